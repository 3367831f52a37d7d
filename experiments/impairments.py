"""Real radios: every packet and the range under TX-RX offset, tag clock error and multipath.

Each run emulates one burst-mode scenario twice from the same seed (same geometry,
packets and noise draws):

* **as a user gets it**: every impairment of a real unsynchronised lab on
  (``ScenarioConfig`` defaults: sample clock tied to the LO, phase noise, IQ imbalance,
  DC, tag duty error and jitter), the TX-RX offset ``lo_ppm`` set, the tag clock drawn
  in +-``tag_clock_ppm_max``; blind acquisition and a calibration made by the workflow
  (``backscatter calibrate`` on a CW run of the same emulated radio);
* **idealised** (labelled so): the same scenario with ``ideal=True`` (the same CFO and tag
  clock, no drift and no other impairment), side-band references seeded from the truth
  and the circuitry divided out exactly.

It reports, per run, packets sent / detected / CRC ok for both and the range RMSE of
each method for both; the target (issue 13) is every packet with CRC ok and an RMSE
within ``range_margin_m`` of the idealised one, judged on the off-grid method (see
``TARGET_METHODS``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.run import summarise
from dsp.config_base import ConfigBase
from dsp.receiver_config import ReceiverConfig
from dsp.waveform import get_profile
from experiments.common import (
    check_common_fields,
    fmt,
    markdown_table,
    new_figure,
    receive_emulated,
    rmse,
    save_figure,
)
from experiments.engine import Task, int_seed
from sdr.emulator.scenario import ScenarioConfig

NAME = "impairments"
TITLE = "Real radios: packets and range under TX-RX offset, tag clock error and multipath"
METHODS = ("ir_first", "ir_first_interp")
# the range target is judged on the off-grid method: IR First's estimates sit on the 2.44 m
# grid of the IFFT, so a 0.3 m margin is below its resolution (a scenario's error is whichever
# grid point wins, and calibrations 1 cm apart can flip it); its RMSE is reported beside
TARGET_METHODS = ("ir_first_interp",)


@dataclass(frozen=True)
class Config(ConfigBase):
    """Offsets x path counts x seeds; each run is ``duration_s`` of burst mode at ``snr_side_db``."""

    profile: str = "default"
    lo_ppm: tuple[float, ...] = (-10.0, -3.7, -0.6, 0.9, 4.2, 10.0)
    n_nlos: tuple[int, ...] = (0, 1, 2, 3)
    seeds_per_case: int = 1
    duration_s: float = 10.0
    snr_side_db: float = -20.0
    snr_central_db: float = 30.0
    tag_clock_ppm_max: float = 100.0
    range_margin_m: float = 0.3
    acquisition: str = "blind"
    calibration: str = "workflow"

    def _validate(self) -> None:
        check_common_fields(self)
        if not self.lo_ppm or any(abs(v) > 10 for v in self.lo_ppm):
            self._fail("lo_ppm", "must list offsets within +-10 ppm")
        if not self.n_nlos or any(not 0 <= v <= 64 for v in self.n_nlos):
            self._fail("n_nlos", "must list path counts in [0, 64]")
        if self.seeds_per_case < 1:
            self._fail("seeds_per_case", "must be at least 1")
        if not (0.5 <= self.duration_s <= 600):
            self._fail("duration_s", "must be in [0.5, 600] s")
        if not (0 <= self.tag_clock_ppm_max <= 150):
            self._fail("tag_clock_ppm_max", "must be in [0, 150]")
        if self.range_margin_m <= 0:
            self._fail("range_margin_m", "must be positive")


QUICK = Config(lo_ppm=(-10.0, 2.3), n_nlos=(0, 3), duration_s=1.0)


def tasks(cfg: Config) -> list[Task]:
    """One task per (offset, path count, seed); stream ``(5, offset, paths, seed)``."""
    out = []
    for i, lo in enumerate(cfg.lo_ppm):
        for j, paths in enumerate(cfg.n_nlos):
            for k in range(cfg.seeds_per_case):
                params = {"cfg": cfg.to_dict(), "lo_ppm": lo, "n_nlos": paths, "seed_index": k}
                out.append(Task(f"o{i:02d}/p{j:02d}/s{k:02d}", run_case, params, {"run": (5, i, j, k)}))
    return out


def _rmse(run: Any, truth_m: float, method: str) -> float:
    return rmse([e.range_m[method] - truth_m for e in run.epochs if e.range_m.get(method) is not None])


def run_case(params: dict[str, Any], seeds: dict[str, np.random.SeedSequence]) -> dict[str, Any]:
    """The scenario as a user receives it and idealised; packets and range RMSE of both."""
    cfg = Config.from_dict(params["cfg"])
    wf = get_profile(cfg.profile)
    ss = seeds["run"]
    seed = int_seed(ss)
    tag_ppm = float(np.random.default_rng(ss.spawn(1)[0]).uniform(-1, 1) * cfg.tag_clock_ppm_max)
    sc = ScenarioConfig(
        seed=seed,
        duration_s=cfg.duration_s,
        mode="burst",
        n_nlos=params["n_nlos"],
        lo_ppm=params["lo_ppm"],
        tag_clock_ppm=tag_ppm,
        snr_central_db=cfg.snr_central_db,
        snr_lower_db=cfg.snr_side_db,
        snr_upper_db=cfg.snr_side_db,
    )
    d0 = math.dist(sc.tx_pos_m, sc.rx_pos_m)  # the TX-RX distance a user measures with a tape
    rcfg = ReceiverConfig(tag_mode="burst", methods=METHODS, tx_rx_distance_m=d0)
    row: dict[str, Any] = {"lo_ppm": params["lo_ppm"], "tag_clock_ppm": tag_ppm, "n_nlos": params["n_nlos"]}
    row["seed"] = seed
    for label, scen, acq, cal in (
        ("real", sc, cfg.acquisition, cfg.calibration),
        ("ideal", sc.replace(ideal=True), "seeded", "truth"),
    ):
        emu, run = receive_emulated(wf, scen, rcfg, acq, cal)
        s = summarise(run)
        truth = emu.truth.range_true_m
        row[f"packets_sent_{label}"] = s["packets_sent"]
        row[f"packets_detected_{label}"] = s["packets_detected"]
        row[f"crc_ok_{label}"] = s["crc_ok"]
        row[f"bit_errors_{label}"] = s["bit_errors"]
        row[f"epochs_{label}"] = len(run.epochs)
        row["range_true_m"] = truth
        for m in METHODS:
            row[f"rmse_{m}_{label}_m"] = _rmse(run, truth, m)
        if label == "real":
            row["drift_measured_ppm"] = _last_measured_drift(run)
    return {"rows": [row]}


def _last_measured_drift(run: Any) -> float:
    block = run.last_block
    value = None if block is None else block.timing_drift_measured_ppm
    return math.nan if value is None else float(value)


def _pair(r: dict, method: str) -> str:
    return f"{fmt(r[f'rmse_{method}_real_m'], '.3f')} / {fmt(r[f'rmse_{method}_ideal_m'], '.3f')}"


def verdict(cfg: Config, r: dict) -> dict[str, bool]:
    """The issue's target for one run: every packet with CRC ok, RMSE within the margin."""
    every = r["packets_sent_real"] > 0 and r["crc_ok_real"] == r["packets_sent_real"]
    ranged = all(
        math.isfinite(r[f"rmse_{m}_real_m"])
        and r[f"rmse_{m}_real_m"] <= r[f"rmse_{m}_ideal_m"] + cfg.range_margin_m
        for m in TARGET_METHODS
    )
    return {"every_packet": every, "range_within_margin": ranged}


def finalize(cfg: Config, rows: list[dict], arrays: dict, out_dir: Path) -> dict:
    """The per-run table and the count of runs meeting the target."""
    rows = sorted(rows, key=lambda r: (r["lo_ppm"], r["n_nlos"], r["seed"]))
    verdicts = [verdict(cfg, r) for r in rows]
    md = [
        f"# {TITLE}\n",
        f"Burst mode, {cfg.duration_s:g} s per run, side bands at {cfg.snr_side_db:g} dB per subcarrier, "
        f"central {cfg.snr_central_db:g} dB, tag clock drawn in +-{cfg.tag_clock_ppm_max:g} ppm. "
        f"'real': impairments on, {cfg.acquisition} acquisition, {cfg.calibration} calibration. "
        "'ideal' (idealised): ideal=True, truth-seeded references, truth calibration.\n",
        markdown_table(
            [
                "TX-RX (ppm)",
                "measured drift (ppm)",
                "tag (ppm)",
                "NLoS",
                "CRC ok / sent, real",
                "ideal",
                *[f"{m} RMSE real / ideal (m)" for m in METHODS],
                "target",
            ],
            [
                [
                    f"{r['lo_ppm']:+g}",
                    fmt(r["drift_measured_ppm"], "+.2f"),
                    f"{r['tag_clock_ppm']:+.0f}",
                    r["n_nlos"],
                    f"{r['crc_ok_real']} / {r['packets_sent_real']}",
                    f"{r['crc_ok_ideal']} / {r['packets_sent_ideal']}",
                    *[_pair(r, m) for m in METHODS],
                    "ok" if all(v.values()) else ", ".join(k for k, ok in v.items() if not ok),
                ]
                for r, v in zip(rows, verdicts, strict=True)
            ],
        ),
    ]
    met = sum(all(v.values()) for v in verdicts)
    md.append(
        f"\n{met} of {len(rows)} runs meet the target (every packet with CRC ok; "
        f"{', '.join(TARGET_METHODS)} RMSE within {cfg.range_margin_m} m of the idealised run).\n"
    )
    md_path = out_dir / f"{NAME}.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    fig_path = _figure(cfg, rows, out_dir / "impairments_rmse.png")
    return {"runs": len(rows), "runs_meeting_target": met, "verdicts": verdicts, "files": [md_path, fig_path]}


def _figure(cfg: Config, rows: list[dict], path: Path) -> Path:
    """Range RMSE as a user gets it against the idealised run, per method, marked by path count."""
    fig = new_figure(6.5, 4.5)
    ax = fig.add_subplot()
    top = 0.1
    for m, marker in zip(METHODS, ("o", "s"), strict=False):
        for paths in sorted({r["n_nlos"] for r in rows}):
            sel = [r for r in rows if r["n_nlos"] == paths]
            x = [r[f"rmse_{m}_ideal_m"] for r in sel]
            y = [r[f"rmse_{m}_real_m"] for r in sel]
            top = max([top, *[v for v in x + y if math.isfinite(v)]])
            ax.scatter(x, y, marker=marker, label=f"{m}, {paths} NLoS", alpha=0.8)
    line = np.linspace(0, top * 1.05, 50)
    ax.plot(line, line, "k-", lw=0.8, label="real = idealised")
    ax.plot(line, line + cfg.range_margin_m, "k:", lw=0.8, label=f"+{cfg.range_margin_m:g} m (target)")
    ax.set_xlabel("range RMSE, idealised run (m)")
    ax.set_ylabel("range RMSE, impairments on, blind, workflow calibration (m)")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    return save_figure(fig, path)
