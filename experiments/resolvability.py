"""Fig. 8: range RMSE of two-path channels over the NLoS excess length and relative power.

A line-of-sight path plus one NLoS path, in the TX-RX channel (Fig. 8a) or in the
tag-RX channel (Fig. 8b), every other channel line of sight only.  The LoS lengths
and power are fixed; the NLoS path is ``excess_m`` longer and ``rel_power_db``
stronger (negative: weaker) than the LoS of its channel, with a uniformly random
phase per repetition, so each map cell's RMSE is over the NLoS phase (and the
noise, small at the high SNR used, as in the paper).  The ``c / B_occ`` line marks
the two-path resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm

from dsp.config_base import ConfigBase
from dsp.ranging import REGISTRY
from dsp.receiver_config import ReceiverConfig
from dsp.waveform import SPEED_OF_LIGHT_M_S, get_profile
from experiments.common import (
    acquisition_lead_windows,
    check_common_fields,
    duration_for_windows,
    fmt,
    markdown_table,
    new_figure,
    receive_emulated,
    rmse,
    save_figure,
)
from experiments.engine import Task, int_seed
from sdr.emulator.scenario import ScenarioConfig

NAME = "resolvability"
TITLE = "Fig. 8: two-path resolvability (range RMSE maps)"
CASES = ("tx_rx", "tag_rx")
CASE_LABELS = {"tx_rx": "(a) NLoS path in TX-RX", "tag_rx": "(b) NLoS path in tag-RX"}


@dataclass(frozen=True)
class Config(ConfigBase):
    """Resolvability sweep: a grid of (excess length, relative power) cells, ``repetitions`` each."""

    profile: str = "default"
    cases: tuple[str, ...] = CASES
    excess_m: tuple[float, ...] = tuple(0.5 + 1.0 * i for i in range(30))
    rel_power_db: tuple[float, ...] = tuple(-24.0 + 2.0 * i for i in range(13))
    repetitions: int = 6
    tx_rx_m: float = 20.0
    tx_tag_m: float = 12.0
    tag_rx_m: float = 12.0
    epoch_symbols: int = 480
    snr_central_db: float = 30.0
    snr_side_db: float = 20.0
    band: str = "upper"
    methods: tuple[str, ...] = ()
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    acquisition: str = "blind"
    calibration: str = "workflow"
    ideal: bool = False  # True: the emulator's impairments off (ScenarioConfig.ideal)

    def _validate(self) -> None:
        check_common_fields(self)
        if not self.cases or any(c not in CASES for c in self.cases):
            self._fail("cases", f"must list cases from {CASES}")
        if not self.excess_m or any(not (0 < e < 1000) for e in self.excess_m):
            self._fail("excess_m", "must list excess lengths in (0, 1000) m")
        if not self.rel_power_db or any(not (-60 <= p <= 20) for p in self.rel_power_db):
            self._fail("rel_power_db", "must list relative powers in [-60, 20] dB")
        if self.repetitions < 1:
            self._fail("repetitions", "must be at least 1")
        if min(self.tx_rx_m, self.tx_tag_m, self.tag_rx_m) <= 0:
            self._fail("tx_rx_m", "LoS lengths must be positive")

    @property
    def method_names(self) -> tuple[str, ...]:
        return self.methods or tuple(sorted(REGISTRY))


QUICK = Config(excess_m=(3.0, 8.0, 12.5, 20.0, 30.0), rel_power_db=(-20.0, -10.0, 0.0), repetitions=2)


def tasks(cfg: Config) -> list[Task]:
    """One run per map cell (its repetitions inside); stream ``(1, case, excess, power)``."""
    out = []
    for ci, case in enumerate(cfg.cases):
        for ei, excess in enumerate(cfg.excess_m):
            for pi, power in enumerate(cfg.rel_power_db):
                params = {"cfg": cfg.to_dict(), "case": case, "excess_m": excess, "rel_power_db": power}
                out.append(Task(f"{case}/e{ei:03d}/p{pi:03d}", run_cell, params, {"cell": (1, ci, ei, pi)}))
    return out


def _path_rows(length_m: float, gain: complex, extra: tuple[float, complex] | None) -> tuple:
    rows = [(length_m, gain.real, gain.imag)]
    if extra is not None:
        rows.append((extra[0], extra[1].real, extra[1].imag))
    return tuple(rows)


def run_cell(params: dict[str, Any], seeds: dict[str, np.random.SeedSequence]) -> dict[str, Any]:
    """``repetitions`` two-path runs of one map cell, each with its own NLoS phase and noise."""
    cfg = Config.from_dict(params["cfg"])
    wf = get_profile(cfg.profile)
    lam = SPEED_OF_LIGHT_M_S / wf.carrier_freq_hz
    case, excess, power = params["case"], params["excess_m"], params["rel_power_db"]
    rcfg = ReceiverConfig(
        tag_mode="cw",
        segment_symbols=cfg.epoch_symbols if cfg.epoch_symbols <= 1000 else 500,
        epoch_symbols=cfg.epoch_symbols,
        methods=cfg.method_names,
        method_params=cfg.method_params,
        tx_rx_distance_m=cfg.tx_rx_m,
    )
    rows = []
    for rep, ss in enumerate(seeds["cell"].spawn(cfg.repetitions)):
        geo_ss, run_ss = ss.spawn(2)
        rng = np.random.default_rng(geo_ss)
        phases = rng.uniform(0, 2 * np.pi, 4)  # three LoS gains and the NLoS path
        los = {
            name: lam / (4 * np.pi * d) * np.exp(1j * ph)
            for (name, d), ph in zip(
                (("tx_rx", cfg.tx_rx_m), ("tx_tag", cfg.tx_tag_m), ("tag_rx", cfg.tag_rx_m)),
                phases,
                strict=False,
            )
        }
        length = {"tx_rx": cfg.tx_rx_m, "tx_tag": cfg.tx_tag_m, "tag_rx": cfg.tag_rx_m}
        nlos = (length[case] + excess, abs(los[case]) * 10 ** (power / 20) * np.exp(1j * phases[3]))
        sc = ScenarioConfig(
            ideal=cfg.ideal,
            seed=int_seed(run_ss),
            duration_s=duration_for_windows(
                wf, cfg.epoch_symbols + acquisition_lead_windows(cfg.acquisition)
            ),
            mode="cw",
            bands=("central", cfg.band),
            paths_tx_rx=_path_rows(length["tx_rx"], los["tx_rx"], nlos if case == "tx_rx" else None),
            paths_tx_tag=_path_rows(length["tx_tag"], los["tx_tag"], None),
            paths_tag_rx=_path_rows(length["tag_rx"], los["tag_rx"], nlos if case == "tag_rx" else None),
            snr_central_db=cfg.snr_central_db,
            **{f"snr_{cfg.band}_db": cfg.snr_side_db},
        )
        emu, run = receive_emulated(wf, sc, rcfg, cfg.acquisition, cfg.calibration)
        if not run.epochs:
            raise RuntimeError(f"no ranging epoch (scenario seed {sc.seed})")
        e = run.epochs[-1]
        row = {"case": case, "excess_m": excess, "rel_power_db": power, "rep": rep, "seed": sc.seed}
        row.update({f"err_{m}_m": e.range_m[m] - emu.truth.range_true_m for m in cfg.method_names})
        rows.append(row)
    return {"rows": rows}


def rmse_maps(cfg: Config, rows: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """``case -> method -> [excess, power]`` RMSE in metres."""
    out: dict[str, dict[str, np.ndarray]] = {}
    ei = {e: i for i, e in enumerate(cfg.excess_m)}
    pi = {p: i for i, p in enumerate(cfg.rel_power_db)}
    for case in cfg.cases:
        out[case] = {}
        for m in cfg.method_names:
            acc = [[[] for _ in cfg.rel_power_db] for _ in cfg.excess_m]
            for r in rows:
                if r["case"] == case:
                    acc[ei[r["excess_m"]]][pi[r["rel_power_db"]]].append(r[f"err_{m}_m"])
            out[case][m] = np.array([[rmse(c) for c in row] for row in acc])
    return out


def finalize(cfg: Config, rows: list[dict], arrays: dict, out_dir: Path) -> dict:
    """RMSE maps (one figure per method, both cases) and a table of RMSE below/above ``c / B_occ``."""
    wf = get_profile(cfg.profile)
    res_m = wf.resolution_m
    maps = rmse_maps(cfg, rows)
    excess = np.array(cfg.excess_m)
    summary_rows = []
    for case in cfg.cases:
        for m in cfg.method_names:
            grid = maps[case][m]
            below = [r[f"err_{m}_m"] for r in rows if r["case"] == case and r["excess_m"] < res_m]
            above = [r[f"err_{m}_m"] for r in rows if r["case"] == case and r["excess_m"] >= res_m]
            summary_rows.append(
                {
                    "case": case,
                    "method": m,
                    "rmse_below_resolution_m": rmse(below),
                    "rmse_above_resolution_m": rmse(above),
                    "rmse_max_cell_m": float(np.nanmax(grid)),
                }
            )
    files = [_map_figure(cfg, maps, m, res_m, out_dir / f"resolvability_{m}.png") for m in cfg.method_names]
    md = [
        f"# {TITLE}\n",
        f"LoS lengths TX-RX {cfg.tx_rx_m:g} m, TX-tag {cfg.tx_tag_m:g} m, tag-RX {cfg.tag_rx_m:g} m; "
        f"{cfg.repetitions} random NLoS phases per cell; SNR per subcarrier central "
        f"{cfg.snr_central_db:g} dB, {cfg.band} {cfg.snr_side_db:g} dB; "
        f"CW epoch {cfg.epoch_symbols} symbols; resolution c / B_occ = {res_m:.2f} m.\n",
        "## RMSE below and above the resolution (all powers pooled)\n",
        markdown_table(
            ["case", "method", "RMSE, excess < c/B_occ (m)", "RMSE, excess >= c/B_occ (m)", "worst cell (m)"],
            [
                [
                    CASE_LABELS[s["case"]],
                    s["method"],
                    fmt(s["rmse_below_resolution_m"]),
                    fmt(s["rmse_above_resolution_m"]),
                    fmt(s["rmse_max_cell_m"]),
                ]
                for s in summary_rows
            ],
        ),
    ]
    main = "ir_first" if "ir_first" in cfg.method_names else cfg.method_names[0]
    for case in cfg.cases:
        md.append(
            f"## {main} RMSE (m), {CASE_LABELS[case]}: rows excess length (m), columns NLoS power (dB)\n"
        )
        md.append(
            markdown_table(
                ["excess (m)", *[f"{p:g}" for p in cfg.rel_power_db]],
                [[f"{e:g}", *[fmt(v, ".2f") for v in maps[case][main][i]]] for i, e in enumerate(excess)],
            )
        )
    md_path = out_dir / f"{NAME}.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    return {
        "resolution_m": res_m,
        "summary": summary_rows,
        "maps_m": {c: {m: v.tolist() for m, v in d.items()} for c, d in maps.items()},
        "files": [md_path, *files],
    }


def _map_figure(cfg: Config, maps: dict, method: str, res_m: float, path: Path) -> Path:
    fig = new_figure(5.0 * len(cfg.cases) + 1.0, 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(cfg.cases), sharey=True))
    vals = np.concatenate([maps[c][method].ravel() for c in cfg.cases])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    vmin = max(float(vals.min()) if vals.size else 1e-3, 1e-3)
    vmax = max(float(vals.max()) if vals.size else 1.0, vmin * 10)
    norm = LogNorm(vmin=vmin, vmax=vmax)
    x, y = _edges(cfg.excess_m), _edges(cfg.rel_power_db)
    mesh = None
    for ax, case in zip(axes, cfg.cases, strict=True):
        mesh = ax.pcolormesh(x, y, np.maximum(maps[case][method].T, vmin), norm=norm, cmap="viridis")
        ax.axvline(res_m, color="red", lw=2, label=f"c / B_occ = {res_m:.1f} m")
        ax.set_title(CASE_LABELS[case], fontsize=10)
        ax.set_xlabel("NLoS excess path length (m)")
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel("NLoS power relative to LoS (dB)")
    fig.colorbar(mesh, ax=list(axes), label="range RMSE (m)")
    fig.suptitle(f"Fig. 8: range RMSE, {method}", fontsize=11)
    return save_figure(fig, path)


def _edges(centres: tuple[float, ...]) -> np.ndarray:
    c = np.asarray(centres, float)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])
