"""CW calibration: circuitry responses and d_cal measured at a known range, stored, applied, refused."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest

from app.calibrate import cw_scenario_defaults
from backscatter.cli import main
from calibration.estimate import group_delay_s, propagation
from calibration.store import BandSetting, CalibrationError, RadioSettings, load_calibration, save_calibration
from calibration.workflow import calibrate
from dsp.receiver import Receiver
from dsp.receiver_config import ReceiverConfig
from dsp.results import RangingEpoch
from dsp.waveform import get_profile
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from tests.support_ranging import (
    K_SIGMA,
    assert_ranges,
    band_var_s2,
    calibration_error_of,
    image_rejection,
    range_limits_m,
)

D0_M, KNOWN_M, HW_SEED = 20.0, 31.0, 4
C = 299_792_458.0


def settings_for(wf, bands=("central", "lower", "upper")) -> RadioSettings:
    channels = tuple(BandSetting(b, wf.band_centers_hz[b], 30.0) for b in bands)
    return RadioSettings(wf, wf.working_rate_hz, channels)


@pytest.fixture(scope="module")
def cal_emu(wf):
    """The emulated radio ``HW_SEED`` in CW at a known geometry, 0.3 s (line of sight only)."""
    half = math.sqrt((KNOWN_M / 2) ** 2 - (D0_M / 2) ** 2)
    sc = ScenarioConfig(
        seed=11, duration_s=0.3, mode="cw", tag_pos_m=(D0_M / 2, half), circuitry_seed=HW_SEED
    )
    emu = Emulator(wf, sc)
    assert emu.truth.range_true_m == pytest.approx(KNOWN_M)
    return emu


@pytest.fixture(scope="module")
def cal(cal_emu):
    """A calibration of ``cal_emu``'s radio from its 0.3 s of CW."""
    blocks = ((b.iq, b.lost_before) for b in cal_emu.blocks())
    return calibrate(blocks, settings_for(cal_emu.wf), KNOWN_M, D0_M, 0.3)


def weighted_ls_delay_s(resp: np.ndarray, freqs_hz: np.ndarray, near_s: float) -> float:
    """The delay ``calibration.estimate.group_delay_s`` defines (a straight line through the
    phase, least squares weighted by the magnitude), written out here with ``np.polyfit``
    (its weights multiply the residuals: ``sqrt`` of the magnitude) on the phase left after
    removing ``near_s``, which is within a few degrees of a line, so needs no unwrapping."""
    r = resp * np.exp(2j * np.pi * freqs_hz * near_s)
    r = r * np.exp(-1j * np.angle(np.sum(r)))
    return near_s - np.polyfit(freqs_hz, np.angle(r), 1, w=np.sqrt(np.abs(r)))[0] / (2 * np.pi)


def test_group_delay_of_a_pure_delay_across_the_dc_hole(wf):
    for tau in (3e-9, 47.5e-9, -12e-9):
        resp = propagation(wf, tau * 299_792_458.0) * np.exp(0.7j)
        assert group_delay_s(resp, wf.active_freqs_hz) == pytest.approx(tau, abs=1e-13)


def test_d_cal_is_the_differential_circuitry_delay_with_its_ripples_least_squares_bias(wf, cal_emu, cal):
    """``d_cal_u = c (gd(C_u) - gd(C_0))`` (calibration/estimate.py), ``gd`` the magnitude-weighted
    least-squares delay of the measured ``H_b / P_b`` (``P_b`` the known line-of-sight
    propagation).  Its expected value is that delay of the noiseless model, not the circuits'
    pure delays: the emulated phase ripple (3 degrees, periods 4-12 MHz, over three circuits)
    tilts the fitted line by 8.3 cm (lower) and 6.6 cm (upper) for this radio, and the central
    band's structural mode (tag at 31 m) and data leak move ``gd(C_0)`` by another 2.7 mm.
    Ranging is not biased by it: the stored response is flattened by the same ``gd``
    (test_calibration_brings_los_ranging_...).

    Noise: each band's delay has the single-path Cramer-Rao variance at its SNR over all the
    calibration's symbols, plus the IQ image (-32 dBc at worst) counted as un-averaged noise
    (tests/support_ranging.py ``band_var_s2``; the image is fixed for a fixed channel, so
    white noise of that level over-bounds it): ``c sqrt(var_0 + var_u)`` = 6.0 mm here (8e-5 m
    without the image), ``K_SIGMA`` = 5 times that.
    """
    tr, f = cal_emu.truth, wf.active_freqs_hz
    known = {"central": D0_M, "lower": KNOWN_M, "upper": KNOWN_M}
    gd = {}
    for b, length in known.items():
        model = tr.cfr_propagation[b] * tr.cfr_circuitry[b] * np.exp(2j * np.pi * f * length / C)
        gd[b] = weighted_ls_delay_s(model, f, tr.circuitry_delay_s[b])
    sc, symbols = cal_emu.sc, cal.quality["symbols"]
    irr = image_rejection(sc)
    for band in ("lower", "upper"):
        expected = (gd[band] - gd["central"]) * C
        var = band_var_s2(sc.snr_db["central"], symbols, irr) + band_var_s2(sc.snr_db[band], symbols, irr)
        assert cal.d_cal_m[band] == pytest.approx(expected, abs=K_SIGMA * C * math.sqrt(var))
    q = cal.quality
    assert q["epochs"] >= 5 and all(abs(q["snr_db"][b] - 30) < 1 for b in q["snr_db"])
    assert all(v < 0.01 for v in q["d_cal_std_m"].values())  # stable over the run (30 dB)
    assert all(1 < q["ripple_deg"][b] < 6 for b in q["ripple_deg"])  # the emulator's +-3 deg ripple


@pytest.mark.parametrize("seed", [21, 22])
def test_calibration_brings_los_ranging_from_metres_to_the_cramer_rao_bound(wf, cal_emu, cal, seed):
    """Uncalibrated, the range is off by the circuits' differential delay (10.1 m lower, 8.0 m
    upper for this radio; 5-60 ns per circuit).  Calibrated, each epoch's side-band range lies
    within tests/support_ranging.py's limit: the true range plus IR First's bias on the noiseless
    model, ``K_SIGMA`` Cramer-Rao deviations of the epoch (IQ image as un-averaged noise: 3.0 cm
    at 30 dB over 1500 symbols), plus this calibration's own error derived the same way
    (its scenario's IR First bias and ``K_SIGMA`` deviations over its symbols); the combined range
    between the bands' limits.  About 6 cm in all (0.5 m before; the ranges measured 2-3 mm off).
    """
    sc = ScenarioConfig(seed=seed, duration_s=0.12, mode="cw", circuitry_seed=HW_SEED)
    emu = Emulator(wf, sc)
    iq = emu.generate()
    epochs = {}
    for name, kw in (("none", {}), ("calibrated", cal.receiver_kwargs())):
        cfg = ReceiverConfig(tag_mode="cw", tx_rx_distance_m=D0_M)  # typed: the RX stands at (20, 0)
        rx = Receiver(emu.wf, list(sc.bands), None, cfg, **kw)
        epochs[name] = [r for r in rx.push(iq) + rx.flush() if isinstance(r, RangingEpoch)]
        assert epochs[name]
    # the smallest differential circuitry delay is 8.0 m; 2 m leaves room for the ripple's tilt
    err_none = [abs(e.range_m["ir_first_interp"] - emu.truth.range_true_m) for e in epochs["none"]]
    assert min(err_none) > 2.0
    cal_error = calibration_error_of(cal_emu, cal.quality["symbols"])
    for e in epochs["calibrated"]:
        assert_ranges(emu, e, e.n_symbols, cal_error_m=cal_error)


def test_save_load_round_trip_and_refusal_of_other_settings(tmp_path, wf, cal):
    path = tmp_path / "cal.h5"
    save_calibration(path, cal)
    with pytest.raises(FileExistsError):
        save_calibration(path, cal)
    back = load_calibration(path)
    assert back.d_cal_m == cal.d_cal_m
    np.testing.assert_array_equal(back.response["upper"], cal.response["upper"])
    back.check(settings_for(wf))  # same settings: accepted
    shift = {"upper": 1e6}
    moved = RadioSettings(
        wf,
        wf.working_rate_hz,
        tuple(BandSetting(b, wf.band_centers_hz[b] + shift.get(b, 0.0), 30.0) for b in cal.response),
    )
    with pytest.raises(CalibrationError, match="upper band: calibration made at RF centre"):
        back.check(moved)
    louder = RadioSettings(
        wf, wf.working_rate_hz, tuple(BandSetting(b, wf.band_centers_hz[b], 40.0) for b in cal.response)
    )
    with pytest.raises(CalibrationError, match="gain 30 dB, this stream has 40 dB"):
        back.check(louder)
    x410 = get_profile("x410-62m5")
    with pytest.raises(CalibrationError, match="another waveform"):
        back.check(RadioSettings(x410, x410.capture_rate_hz, settings_for(wf).bands))


def test_calibration_saved_before_the_rate_rename_still_loads(tmp_path, wf, cal):
    """Its settings name the capture rate, and its waveform the working rate, ``sample_rate_hz``."""
    path = tmp_path / "old.h5"
    save_calibration(path, cal)
    with h5py.File(path, "a") as f:
        settings, waveform = json.loads(f.attrs["settings"]), json.loads(f.attrs["waveform"])
        settings["sample_rate_hz"] = settings.pop("capture_rate_hz")
        waveform["sample_rate_hz"] = waveform.pop("working_rate_hz")
        f.attrs["settings"], f.attrs["waveform"] = json.dumps(settings), json.dumps(waveform)
    back = load_calibration(path)
    assert back.settings == cal.settings
    back.check(settings_for(wf))


def test_loader_names_the_file_and_the_problem(tmp_path, cal):
    bad = tmp_path / "not.h5"
    bad.write_bytes(b"nonsense")
    with pytest.raises(CalibrationError, match=r"not\.h5: cannot open"):
        load_calibration(bad)
    path = tmp_path / "cal.h5"
    save_calibration(path, cal)
    with h5py.File(path, "a") as f:
        del f["bands/lower/response"]
        f["bands/lower/response"] = np.ones(3, complex)
    with pytest.raises(CalibrationError, match=r"/bands/lower/response: must be complex \[800\]"):
        load_calibration(path)


def test_calibrate_then_replay_with_the_calibration(tmp_path, capsys, wf):
    cal_path, cap = tmp_path / "cal.h5", tmp_path / "run.h5"
    hw = ["--circuitry-seed", "7"]
    args = ["calibrate", "--known-range-m", "33", "--duration-s", "0.25", "--seed", "0"]
    assert main([*args, "--out", str(cal_path), "--json", *hw]) == 0
    capsys.readouterr()
    emu_args = ["emulate", "--out", str(cap), "--seed", "5", "--mode", "cw", "--duration-s", "0.12"]
    assert main([*emu_args, *hw]) == 0
    capsys.readouterr()
    assert main(["replay", str(cap), "--calibration", str(cal_path), "--json"]) == 0
    import json

    s = json.loads(capsys.readouterr().out)
    # the median epoch's range lies between the side bands' limits (tests/support_ranging.py) for
    # the replayed scenario's epochs, with the error of this calibration derived on its scenario
    # (the calibrate command's: line of sight, the tag where TX-tag-RX is 33 m)
    run_emu = Emulator(wf, ScenarioConfig(seed=5, duration_s=0.12, mode="cw", circuitry_seed=7))
    cal_sc = {
        **cw_scenario_defaults(D0_M, 33.0),
        "seed": 0,
        "duration_s": 0.25,
        "mode": "cw",
        "circuitry_seed": 7,
    }
    cal_error = calibration_error_of(
        Emulator(wf, ScenarioConfig(**cal_sc)), load_calibration(cal_path).quality["symbols"]
    )
    m = ReceiverConfig().epoch_symbols
    limits = range_limits_m(run_emu, m, m, cal_error_m=cal_error).values()
    got = run_emu.truth.range_true_m + s["range_error_m"]["ir_first_interp"]
    assert min(e - t for e, t in limits) <= got <= max(e + t for e, t in limits)
    assert s["calibration"] == str(cal_path)
    assert main(["replay", str(cap), "--calibration", str(tmp_path / "missing.h5")]) == 2
    assert "missing.h5: cannot open" in capsys.readouterr().err
