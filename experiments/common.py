"""What every sweep shares: the attenuation-to-SNR map, emulate-and-receive, and the output writers.

**Attenuation.**  The paper set the backscatter SNR with an attenuator on the tag-RX
link.  The noise floor of the receiver is fixed and the attenuator scales only the
backscatter, so the side-band SNR per subcarrier falls dB for dB:
``snr_side_db = side_snr_at_zero_attenuation_db - attenuation_db``.  The central
band (the direct TX-RX signal) does not pass the attenuator and keeps its SNR.
``side_snr_at_zero_attenuation_db = 8`` puts the paper's 12..48 dB on -4..-40 dB per
subcarrier, the lowest the emulator takes, i.e. ``Eb/N0`` (eq. (103) with the
coherent gain of the ``K_act`` subcarriers, docs/RECEIVER.md) of 36.8..0.8 dB with
one side band.

**Acquisition.**  By default (``acquisition = "blind"``) the receiver runs as a user runs
it: it acquires the tag blind, which at the lowest side-band SNRs needs up to seconds of
signal (docs/RECEIVER.md), and decodes the packets that arrived before acquisition by
look-back.  ``acquisition = "seeded"`` (idealised: tables that use it say so) gives the
receiver its side-band reference the way a receiver that had acquired the tag earlier
would hold it: the tag-observed channel and the tag's carrier offset, taken from the
emulator's truth (:meth:`~dsp.receiver.Receiver.seed_reference`, see
:func:`seed_side_band_references`).  Every CFR, CIR, range and bit still comes from the
run's own samples; the reference only steers the per-window projections and phase
tracking.

**Calibration.**  By default (``calibration = "workflow"``) a sweep runs on one emulated
radio (``LAB_CIRCUITRY_SEED``: the same TX, tag and RX hardware in every scenario, as in a
lab) and calibrates it the way a user does: :func:`calibration.workflow.calibrate` on a CW
line-of-sight emulation of that hardware with known lengths, whose responses and ``d_cal``
every scenario's receiver then applies.  ``calibration = "truth"`` divides out the
emulator's true circuitry responses instead (idealised: tables that use it say so).
"""

from __future__ import annotations

import csv
import functools
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from matplotlib.figure import Figure

from app.run import Run
from app.session import ReceiverSettings, emulated_radio, open_receiver
from calibration.store import Calibration
from dsp.bands import SIDE_BANDS
from dsp.receiver import Receiver
from dsp.receiver_config import ReceiverConfig
from dsp.receiver_startup import STARTUP_WINDOWS
from dsp.waveform import WaveformConfig
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig

ACQUISITION_MODES = ("seeded", "blind")
CALIBRATION_MODES = ("workflow", "truth")
LAB_CIRCUITRY_SEED = 2024  # the emulated radio every workflow-calibrated sweep runs on
CAL_DURATION_S = 0.3  # the CW calibration run: 6 epochs of 1500 windows


def check_common_fields(cfg: Any) -> None:
    """The checks every sweep configuration shares, on whichever of these fields it has:
    ``profile``, ``epoch_symbols``, ``band``, ``methods``, ``acquisition`` (``cfg._fail`` raises)."""
    from dsp.ranging import REGISTRY
    from dsp.waveform import PROFILES

    if hasattr(cfg, "profile") and cfg.profile not in PROFILES:
        cfg._fail("profile", f"unknown profile; known: {sorted(PROFILES)}")
    if hasattr(cfg, "epoch_symbols") and not (16 <= cfg.epoch_symbols <= 100_000):
        cfg._fail("epoch_symbols", "must be in [16, 100000]")
    if hasattr(cfg, "band") and cfg.band not in SIDE_BANDS:
        cfg._fail("band", "must be 'lower' or 'upper'")
    if hasattr(cfg, "methods") and any(m not in REGISTRY for m in cfg.methods):
        cfg._fail("methods", f"unknown method; known: {sorted(REGISTRY)}")
    if hasattr(cfg, "method_params"):
        from dsp.ranging.params import validate_method_params

        try:
            object.__setattr__(cfg, "method_params", validate_method_params(cfg.method_params))
        except ValueError as exc:
            cfg._fail("method_params", str(exc))
    if hasattr(cfg, "acquisition") and cfg.acquisition not in ACQUISITION_MODES:
        cfg._fail("acquisition", f"must be one of {ACQUISITION_MODES}")
    if hasattr(cfg, "calibration") and cfg.calibration not in CALIBRATION_MODES:
        cfg._fail("calibration", f"must be one of {CALIBRATION_MODES}")


PAPER = "Next-generation backscatter networks (shared/seeds)"


# ----- SNR conventions -----------------------------------------------------------------------------
def side_snr_db(attenuation_db: float, side_snr_at_zero_attenuation_db: float) -> float:
    """Side-band SNR per subcarrier behind a tag-RX attenuation of ``attenuation_db``."""
    return side_snr_at_zero_attenuation_db - attenuation_db


def ebn0_gain_db(wf: WaveformConfig, n_side_bands: int = 1) -> float:
    """``Eb/N0 - SNR`` in dB: ``n_side_bands * K_act * T_tag / T_ofdm`` (eq. (103), docs/RECEIVER.md)."""
    return float(10 * np.log10(n_side_bands * len(wf.active_subcarriers) * wf.ofdm_symbols_per_tag_symbol))


def bpsk_ber(ebn0_db: np.ndarray | float) -> np.ndarray:
    """BPSK theory ``Q(sqrt(2 Eb/N0))``."""
    from scipy.special import erfc

    return 0.5 * erfc(np.sqrt(10 ** (np.asarray(ebn0_db, float) / 10)))


def acquisition_lead_windows(acquisition: str) -> int:
    """Windows a CW sweep run adds before its epochs for blind acquisition: twice the least the
    receiver ever needs (``acquisition_min_symbols``); where it needs longer (low SNR) the
    first epochs are lost, and the sweep counts them."""
    return 2 * ReceiverConfig().acquisition_min_symbols if acquisition == "blind" else 0


def duration_for_windows(wf: WaveformConfig, n_windows: int) -> float:
    """Capture length that holds ``n_windows`` whole windows after the receiver's timing offset."""
    return (n_windows + 1) * wf.fft_size / wf.working_rate_hz


# ----- emulate and receive -------------------------------------------------------------------------
def seed_side_band_references(rx: Receiver, emu: Emulator) -> None:
    """Install each side band's reference and CFO from the emulator's truth, skipping blind acquisition.

    Must be called once the receiver has its timing (``rx.reference_index`` set) and
    before it processes a segment.  In the window starting at continuous sample ``s``
    the side band is ``(2/pi) * scale * exp(j theta) * H[k] exp(j 2 pi k (s - d(s)) / N)``
    (``H`` = propagation x circuitry, ``d(s)`` the illumination delay of the truth, which
    moves with the sample-clock drift) with the band's CFO ramp; the constant phase is
    left to the receiver's gain estimate.
    """
    s0 = rx.reference_index
    if s0 is None:
        raise RuntimeError("seed_side_band_references: the receiver has no timing yet")
    wf, tr = emu.wf, emu.truth
    k = wf.active_subcarriers
    shift_samples = (s0 - float(tr.illumination_delay_samples(s0))) % wf.fft_size
    for band in rx.sides:
        shift = np.exp(2j * np.pi * k * shift_samples / wf.fft_size)
        cfr = tr.first_harmonic(band) * tr.scale[band] * tr.cfr[band] * shift
        rx.seed_reference(band, cfr, tr.cfo_hz[band])


@functools.lru_cache(maxsize=8)
def workflow_calibration(wf: WaveformConfig, bands: tuple[str, ...], circuitry_seed: int) -> Calibration:
    """A CW calibration run of the radio ``circuitry_seed`` (line of sight, 30 dB, lengths known
    from the geometry), made by :func:`calibration.workflow.calibrate` as ``backscatter
    calibrate`` makes it."""
    from calibration.workflow import calibrate

    sc = ScenarioConfig(
        seed=circuitry_seed + 1,
        duration_s=CAL_DURATION_S,
        mode="cw",
        bands=bands,
        circuitry_seed=circuitry_seed,
    )
    emu = Emulator(wf, sc)
    tr = emu.truth
    settings = emulated_radio(emu.wf, bands, emu.wf.capture_rate_hz)
    chunks = ((blk.iq, blk.lost_before) for blk in emu.blocks())
    d0 = tr.tx_rx_distance_m
    return calibrate(chunks, settings, tr.range_true_m, d0, CAL_DURATION_S, source="emulator")


def receive_emulated(
    wf: WaveformConfig,
    sc: ScenarioConfig,
    cfg: ReceiverConfig,
    acquisition: str = "blind",
    calibration: str = "workflow",
) -> tuple[Emulator, Run]:
    """Emulate ``sc`` block by block into a receiver calibrated as ``calibration`` says (see the
    module docstring); return both and the run."""
    if acquisition not in ACQUISITION_MODES:
        raise ValueError(f"acquisition must be one of {ACQUISITION_MODES}, got {acquisition!r}")
    if calibration not in CALIBRATION_MODES:
        raise ValueError(f"calibration must be one of {CALIBRATION_MODES}, got {calibration!r}")
    settings = ReceiverSettings(truth_calibration=True)
    if calibration == "workflow":
        seed = sc.circuitry_seed if sc.circuitry_seed is not None else LAB_CIRCUITRY_SEED
        sc = sc.replace(circuitry_seed=seed)
        settings = ReceiverSettings(calibration=workflow_calibration(wf, tuple(sc.bands), seed))
    emu = Emulator(wf, sc)
    tr = emu.truth
    radio = emulated_radio(emu.wf, sc.bands, emu.rate_hz)
    rx = open_receiver(settings, radio, truth=tr, config=cfg, where="the sweep's emulated radio")
    run = Run(emu.wf, list(sc.bands), sc.duration_s, tr)
    pending_seed = acquisition == "seeded"
    # what timing acquisition needs (at the capture rate, plus the resampler's span); a segment
    # needs many more
    head = int(np.ceil(STARTUP_WINDOWS * wf.fft_size * emu.rate_hz / wf.working_rate_hz)) + 256
    for blk in emu.blocks():
        iq, lost = blk.iq, blk.lost_before
        if pending_seed and iq.shape[1] > head:
            run.add(rx.push(iq[:, :head], lost))
            seed_side_band_references(rx, emu)
            pending_seed = False
            iq, lost = iq[:, head:], 0
        run.add(rx.push(iq, lost))
    run.add(rx.flush())
    return emu, run


# ----- outputs --------------------------------------------------------------------------------------
def _column(values: list[Any]) -> np.ndarray:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, str) for v in present):
        return np.array([v if v is not None else "" for v in values], dtype=h5py.string_dtype())
    if present and all(isinstance(v, bool) for v in present):
        return np.array([bool(v) for v in values])
    if (
        present
        and all(isinstance(v, int) and not isinstance(v, bool) for v in present)
        and len(present) == len(values)
    ):
        return np.array(values, np.int64)
    return np.array([math.nan if v is None else float(v) for v in values], np.float64)


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Union of the rows' keys, in order of first appearance."""
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    return list(names)


def write_runs(
    out_dir: Path,
    rows: Sequence[dict[str, Any]],
    attrs: dict[str, Any],
    arrays: dict[str, np.ndarray] | None = None,
    timing: Sequence[dict[str, Any]] | None = None,
) -> list[Path]:
    """Raw results: ``runs.h5`` and ``runs.csv``.

    ``runs.h5`` holds group ``runs`` (one dataset per column, one row per measurement),
    ``arrays`` (per-task arrays) and ``timing`` (per-task wall time and worker).
    """
    h5_path, csv_path = out_dir / "runs.h5", out_dir / "runs.csv"
    names = columns(rows)
    tmp = h5_path.with_suffix(".h5.tmp")
    with h5py.File(tmp, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = _attr(v)
        g = f.create_group("runs")
        for name in names:
            g.create_dataset(name, data=_column([r.get(name) for r in rows]))
        if arrays:
            ga = f.create_group("arrays")
            for name, arr in arrays.items():
                ga.create_dataset(name, data=np.asarray(arr))
        if timing:
            gt = f.create_group("timing")
            for name in columns(timing):
                gt.create_dataset(name, data=_column([t.get(name) for t in timing]))
    tmp.replace(h5_path)
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=names)
        w.writeheader()
        for r in rows:
            w.writerow({k: _csv_value(r.get(k)) for k in names})
    return [h5_path, csv_path]


def _attr(v: Any) -> Any:
    """An HDF5 attribute value: big integers (a 128-bit root seed) and anything else as text."""
    if isinstance(v, bool | float | str) or (isinstance(v, int) and abs(v) < 2**63):
        return v
    return str(v)


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.9g}"
    return "" if v is None else v


def read_runs(path: Path) -> dict[str, np.ndarray]:
    """The ``runs`` group of a ``runs.h5`` as column arrays (strings decoded)."""
    with h5py.File(path, "r") as f:
        out = {}
        for name, ds in f["runs"].items():
            out[name] = ds.asstr()[...] if h5py.check_string_dtype(ds.dtype) else ds[...]
        return out


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats as given (format them before)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def fmt(v: float | None, spec: str = ".3g") -> str:
    """A number for a table; ``-`` when missing or not finite."""
    if v is None or not math.isfinite(v):
        return "-"
    return format(v, spec)


def new_figure(width_in: float = 7.0, height_in: float = 4.5) -> Figure:
    """A matplotlib figure without pyplot (no global state, no GUI backend)."""
    return Figure(figsize=(width_in, height_in), layout="constrained")


def attenuation_axis(ax: Any, side_snr_at_zero_attenuation_db: float, gain_db: float) -> Any:
    """A top axis giving the tag-RX attenuation of an ``Eb/N0`` bottom axis (one side band)."""
    snr0 = side_snr_at_zero_attenuation_db
    top = ax.secondary_xaxis("top", functions=(lambda e: snr0 - (e - gain_db), lambda a: snr0 - a + gain_db))
    top.set_xlabel("tag-RX attenuation (dB)", fontsize=8)
    return top


def save_figure(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=120)
    return path


def write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    return path


def rmse(errors: Sequence[float] | np.ndarray) -> float:
    """Root mean square of finite values, ``nan`` when there are none."""
    e = np.asarray([x for x in np.ravel(errors) if x is not None], float)
    e = e[np.isfinite(e)]
    return float(np.sqrt(np.mean(e**2))) if e.size else math.nan
