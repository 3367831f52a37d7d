"""Fig. 9b and Fig. 10: range RMSE against SNR for every ranging method, with the stochastic R-CRLB.

As in the paper: for each number of NLoS paths, ``n_scenarios`` random geometric
scenarios (tag and scatterers drawn once per scenario), each behind every tag-RX
attenuation of ``attenuation_db`` (12..48 dB in 4 dB steps), ``n_measurements``
measurements each, tag in CW mode, central and upper band.

A run is one scenario at one attenuation: one emulated capture of
``n_measurements`` consecutive CW epochs of ``epoch_symbols`` OFDM symbols (the
receiver's CW epoch, 50 ms), i.e. five back-to-back measurements with independent
noise, and nothing more is emulated.  The side-band SNR follows the attenuation
(see :mod:`experiments.common`); ranges use every registered method
(:data:`dsp.ranging.REGISTRY`) with the known TX-RX distance.

The bound is :func:`dsp.crlb.stochastic_range_bound` with the Fisher information
averaged over the sweep's own scenarios of that path count, the estimate averaged
over ``epoch_symbols`` symbols, at the same SNRs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dsp.channel import Paths
from dsp.config_base import ConfigBase
from dsp.crlb import stochastic_range_bound
from dsp.ranging import REGISTRY
from dsp.receiver_config import ReceiverConfig
from dsp.waveform import get_profile
from experiments.common import (
    acquisition_lead_windows,
    attenuation_axis,
    check_common_fields,
    duration_for_windows,
    ebn0_gain_db,
    fmt,
    markdown_table,
    new_figure,
    receive_emulated,
    rmse,
    save_figure,
    side_snr_db,
)
from experiments.engine import Task, int_seed
from experiments.ranging_bounds import identifiable_limit_m, identifiable_table, kpath_bounds_m, kpath_summary
from sdr.emulator.geometry import draw_paths
from sdr.emulator.scenario import ScenarioConfig

NAME = "ranging"
TITLE = "Fig. 9b / Fig. 10: ranging RMSE against SNR, R-CRLB, CDF of absolute errors"
GEOMETRY_STREAM = 3
RUN_STREAM = 4


@dataclass(frozen=True)
class Config(ConfigBase):
    """Ranging sweep: path counts x scenarios x tag-RX attenuations x measurements."""

    profile: str = "default"
    n_nlos: tuple[int, ...] = (0, 2, 4, 6, 8)
    n_scenarios: int = 20
    attenuation_db: tuple[float, ...] = tuple(12.0 + 4.0 * i for i in range(10))
    n_measurements: int = 5
    epoch_symbols: int = 1500
    snr_central_db: float = 30.0
    side_snr_at_zero_attenuation_db: float = 8.0
    band: str = "upper"
    methods: tuple[str, ...] = ()
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    acquisition: str = "blind"
    calibration: str = "workflow"
    ideal: bool = False  # True: the emulator's impairments off (ScenarioConfig.ideal)

    def _validate(self) -> None:
        check_common_fields(self)
        if not self.n_nlos or any(not (0 <= p <= 64) for p in self.n_nlos):
            self._fail("n_nlos", "must list path counts in [0, 64]")
        if self.n_scenarios < 1:
            self._fail("n_scenarios", "must be at least 1")
        if not self.attenuation_db or any(not (0 <= a <= 200) for a in self.attenuation_db):
            self._fail("attenuation_db", "must list attenuations in [0, 200] dB")
        lo = min(side_snr_db(a, self.side_snr_at_zero_attenuation_db) for a in self.attenuation_db)
        if lo < -40:
            self._fail("attenuation_db", f"puts the side band at {lo:g} dB, below the emulator's -40 dB")
        if self.n_measurements < 1:
            self._fail("n_measurements", "must be at least 1")

    @property
    def method_names(self) -> tuple[str, ...]:
        return self.methods or tuple(sorted(REGISTRY))


QUICK = Config(n_nlos=(0, 2), n_scenarios=4, attenuation_db=(12.0, 24.0, 36.0, 48.0), n_measurements=2)


def _att_key(attenuation_db: float) -> int:
    return round(attenuation_db * 10)


def tasks(cfg: Config) -> list[Task]:
    """Runs per (paths, scenario, attenuation) and one bound task per path count.

    Streams are keyed by values, not positions: ``(3, paths, scenario)`` draws a
    scenario's geometry (shared by its attenuations and by the bound), ``(4, paths,
    scenario, 10 x attenuation)`` its noise and offsets.  A sweep over a subset
    (``--set n_nlos=4``) thus repeats the full sweep's runs exactly.
    """
    out = []
    for p in cfg.n_nlos:
        for s in range(cfg.n_scenarios):
            for a in cfg.attenuation_db:
                params = {"cfg": cfg.to_dict(), "n_nlos": p, "scenario": s, "attenuation_db": a}
                seeds = {"geometry": (GEOMETRY_STREAM, p, s), "run": (RUN_STREAM, p, s, _att_key(a))}
                out.append(Task(f"p{p}/s{s:03d}/a{_att_key(a):04d}", run_ranging, params, seeds))
        geo = {f"geometry/{s}": (GEOMETRY_STREAM, p, s) for s in range(cfg.n_scenarios)}
        out.append(Task(f"crlb/p{p}", run_bound, {"cfg": cfg.to_dict(), "n_nlos": p}, geo))
    return out


def scenario_paths(wf: Any, n_nlos: int, geometry: np.random.SeedSequence) -> tuple[Paths, Paths, Paths]:
    """The three channels of one random scenario (SYSTEM.md section 9)."""
    return draw_paths(ScenarioConfig(n_nlos=n_nlos), wf, np.random.default_rng(geometry))[:3]


def run_ranging(params: dict[str, Any], seeds: dict[str, np.random.SeedSequence]) -> dict[str, Any]:
    """One scenario at one attenuation: ``n_measurements`` consecutive CW epochs; range errors per method."""
    cfg = Config.from_dict(params["cfg"])
    wf = get_profile(cfg.profile)
    tx_rx, tx_tag, tag_rx = scenario_paths(wf, params["n_nlos"], seeds["geometry"])
    snr_side = side_snr_db(params["attenuation_db"], cfg.side_snr_at_zero_attenuation_db)
    e = cfg.epoch_symbols
    sc = ScenarioConfig(
        ideal=cfg.ideal,
        seed=int_seed(seeds["run"]),
        duration_s=duration_for_windows(
            wf, cfg.n_measurements * e + acquisition_lead_windows(cfg.acquisition)
        ),
        mode="cw",
        bands=("central", cfg.band),
        paths_tx_rx=tx_rx.to_list(),
        paths_tx_tag=tx_tag.to_list(),
        paths_tag_rx=tag_rx.to_list(),
        snr_central_db=cfg.snr_central_db,
        **{f"snr_{cfg.band}_db": snr_side},
    )
    rcfg = ReceiverConfig(
        tag_mode="cw",
        segment_symbols=_segment(e),
        epoch_symbols=e,
        methods=cfg.method_names,
        method_params=cfg.method_params,
        tx_rx_distance_m=tx_rx.los_length_m,
    )
    emu, run = receive_emulated(wf, sc, rcfg, cfg.acquisition, cfg.calibration)
    # the last n epochs; those blind acquisition did not leave time for are lost (nan errors)
    kept = run.epochs[-cfg.n_measurements :]
    epochs = [None] * (cfg.n_measurements - len(kept)) + kept
    truth = emu.truth.range_true_m
    gain = ebn0_gain_db(wf)
    rows = []
    for m, ep in enumerate(epochs):
        if ep is None:
            lost = {f"err_{name}_m": math.nan for name in cfg.method_names}
            lost.update({f"implausible_{name}": False for name in cfg.method_names})
            lost.update(n_nlos=params["n_nlos"], scenario=params["scenario"], measurement=m, seed=sc.seed)
            lost.update(attenuation_db=params["attenuation_db"], snr_side_set_db=snr_side, lost=True)
            lost.update(
                snr_side_meas_db=math.nan, ebn0_set_db=snr_side + gain, range_true_m=truth, n_symbols=0
            )
            rows.append(lost)
            continue
        row = {
            "n_nlos": params["n_nlos"],
            "scenario": params["scenario"],
            "attenuation_db": params["attenuation_db"],
            "measurement": m,
            "seed": sc.seed,
            "snr_side_set_db": snr_side,
            "snr_side_meas_db": ep.snr_db[cfg.band],
            "ebn0_set_db": snr_side + gain,
            "range_true_m": truth,
            "n_symbols": ep.n_symbols,
            "lost": False,
        }
        row.update(
            {f"err_{name}_m": _wrap(ep.range_m[name] - truth, wf.max_range_m) for name in cfg.method_names}
        )
        # a range physics forbids, flagged by the receiver (dsp.ranging.implausibility)
        row.update({f"implausible_{name}": name in ep.implausible for name in cfg.method_names})
        rows.append(row)
    return {"rows": rows}


def _wrap(err_m: float, max_range_m: float) -> float:
    """A range error folded into ``(-R_max/2, R_max/2]`` (ranges are modulo ``R_max``, eq. (78))."""
    return float((err_m + max_range_m / 2) % max_range_m - max_range_m / 2)


def _segment(epoch_symbols: int) -> int:
    for seg in range(min(500, epoch_symbols), 15, -1):
        if epoch_symbols % seg == 0:
            return seg
    return 16


def run_bound(params: dict[str, Any], seeds: dict[str, np.random.SeedSequence]) -> dict[str, Any]:
    """Stochastic R-CRLB (m) of one path count at every attenuation, over the sweep's scenarios."""
    cfg = Config.from_dict(params["cfg"])
    wf = get_profile(cfg.profile)
    channels = [scenario_paths(wf, params["n_nlos"], seeds[f"geometry/{s}"]) for s in range(cfg.n_scenarios)]
    out: dict[str, list[float]] = {"bistatic_m": [], "direct_m": [], "backscatter_m": []}
    for a in cfg.attenuation_db:
        draws = iter(channels)
        bound = stochastic_range_bound(
            wf,
            lambda _rng, draws=draws: next(draws),
            cfg.n_scenarios,
            0,
            cfg.snr_central_db,
            side_snr_db(a, cfg.side_snr_at_zero_attenuation_db),
            cfg.epoch_symbols,
            cfg.band,
        )
        for k, v in bound.to_dict().items():
            out[k].append(v)
    snrs = [side_snr_db(a, cfg.side_snr_at_zero_attenuation_db) for a in cfg.attenuation_db]
    kpath = kpath_bounds_m(wf, channels, cfg.snr_central_db, snrs, cfg.epoch_symbols, cfg.band)
    product = kpath_bounds_m(wf, channels, cfg.snr_central_db, snrs, cfg.epoch_symbols, cfg.band, "product")
    arrays = {**out, "attenuation_db": list(cfg.attenuation_db), "kpath_m": kpath, "product_m": product}
    return {"rows": [], "arrays": arrays}


# ----- summary --------------------------------------------------------------------------------------
def grid_floor_m(wf: Any) -> float:
    """RMSE of a delay rounded to the CIR grid: ``grid step / sqrt(12)``."""
    return wf.cir_grid_step_m / math.sqrt(12)


def summary_table(cfg: Config, rows: list[dict], arrays: dict) -> list[dict]:
    """Per (paths, attenuation): RMSE per method, R-CRLB, set and measured SNR."""
    out = []
    for p in cfg.n_nlos:
        bound = arrays.get(f"crlb/p{p}/bistatic_m")
        k_finite, k_median = kpath_summary(arrays.get(f"crlb/p{p}/kpath_m"))
        p_finite, p_median = kpath_summary(arrays.get(f"crlb/p{p}/product_m"))
        for i, a in enumerate(cfg.attenuation_db):
            sel = [r for r in rows if r["n_nlos"] == p and r["attenuation_db"] == a]
            snr_meas = [r["snr_side_meas_db"] for r in sel if not r.get("lost")]
            out.append(
                {
                    "n_nlos": p,
                    "attenuation_db": a,
                    "ebn0_set_db": sel[0]["ebn0_set_db"] if sel else math.nan,
                    "snr_side_set_db": side_snr_db(a, cfg.side_snr_at_zero_attenuation_db),
                    "snr_side_meas_db": 10 * math.log10(np.mean(10 ** (np.array(snr_meas) / 10)))
                    if snr_meas
                    else math.nan,
                    "measurements": len(sel),
                    "lost": sum(bool(r.get("lost")) for r in sel),
                    "rmse_m": {m: rmse([r[f"err_{m}_m"] for r in sel]) for m in cfg.method_names},
                    "crlb_m": float(bound[i]) if bound is not None else math.nan,
                    "kpath_crlb_m": k_median[i] if k_median else math.nan,
                    "kpath_finite": k_finite[i] if k_finite else 0,
                    "product_crlb_m": p_median[i] if p_median else math.nan,
                    "product_finite": p_finite[i] if p_finite else 0,
                }
            )
    return out


def finalize(cfg: Config, rows: list[dict], arrays: dict, out_dir: Path) -> dict:
    """Fig. 9b (RMSE vs SNR with the R-CRLB), Fig. 10 (CDFs), the table and the floor check."""
    wf = get_profile(cfg.profile)
    table = summary_table(cfg, rows, arrays)
    floor = grid_floor_m(wf)
    below = {
        m: [
            {
                "n_nlos": t["n_nlos"],
                "attenuation_db": t["attenuation_db"],
                "rmse_m": t["rmse_m"][m],
                "crlb_m": t["crlb_m"],
            }
            for t in table
            if t["rmse_m"][m] < floor
        ]
        for m in cfg.method_names
    }
    cdf = {
        m: {
            p: np.sort(np.abs([r[f"err_{m}_m"] for r in rows if r["n_nlos"] == p])).tolist()
            for p in cfg.n_nlos
        }
        for m in cfg.method_names
    }
    percentiles = {
        m: {
            str(p): {q: float(np.percentile(v, q)) if v else math.nan for q in (50, 90)} for p, v in d.items()
        }
        for m, d in cdf.items()
    }
    files = [
        _rmse_figure(cfg, table, floor, out_dir / "ranging_fig9b_rmse.png"),
        _cdf_figure(cfg, cdf, wf.cir_grid_step_m, out_dir / "ranging_fig10_cdf.png"),
    ]
    md = [
        f"# {TITLE}\n",
        f"{cfg.n_scenarios} scenarios x {len(cfg.attenuation_db)} tag-RX attenuations x {cfg.n_measurements} "
        f"measurements per path count; CW epochs of {cfg.epoch_symbols} symbols; central SNR "
        f"{cfg.snr_central_db:g} dB; side-band SNR per subcarrier = "
        f"{cfg.side_snr_at_zero_attenuation_db:g} dB - attenuation; Eb/N0 (eq. 103) = that + "
        f"{ebn0_gain_db(wf):.1f} dB. Grid step {wf.cir_grid_step_m:.2f} m, "
        f"grid-step floor (step / sqrt 12) {floor:.2f} m.\n",
        markdown_table(
            [
                "NLoS",
                "atten. (dB)",
                "Eb/N0 (dB)",
                "side SNR set / meas. (dB)",
                *[f"RMSE {m} (m)" for m in cfg.method_names],
                "R-CRLB (m)",
                f"K-path CRLB, median of finite (m) [finite of {cfg.n_scenarios}]",
                "K-path CRLB, product form H1 H2 (m) [finite]",
            ],
            [
                [
                    t["n_nlos"],
                    f"{t['attenuation_db']:g}",
                    fmt(t["ebn0_set_db"], ".1f"),
                    f"{t['snr_side_set_db']:.1f} / {fmt(t['snr_side_meas_db'], '.1f')}",
                    *[fmt(t["rmse_m"][m], ".3g") for m in cfg.method_names],
                    fmt(t["crlb_m"], ".3g"),
                    f"{fmt(t['kpath_crlb_m'], '.3g')} [{t['kpath_finite']}]",
                    f"{fmt(t['product_crlb_m'], '.3g')} [{t['product_finite']}]",
                ]
                for t in table
            ],
        ),
        "## Absolute error percentiles (all attenuations pooled), m\n",
        markdown_table(
            ["method", *[f"{p} NLoS: median / p90" for p in cfg.n_nlos]],
            [
                [
                    m,
                    *[
                        f"{fmt(percentiles[m][str(p)][50])} / {fmt(percentiles[m][str(p)][90])}"
                        for p in cfg.n_nlos
                    ],
                ]
                for m in cfg.method_names
            ],
        ),
    ]
    limit_m = identifiable_limit_m(wf)
    ident = identifiable_table(rows, arrays, cfg.n_nlos, cfg.attenuation_db, cfg.method_names, limit_m)
    md += [
        f"## Scenarios whose first path is identifiable (product-form bound below {limit_m:.2f} m, "
        "a tenth of a resolution cell), m\n",
        markdown_table(
            [
                "NLoS",
                "atten. (dB)",
                "scenarios",
                *[f"RMSE {m} (m)" for m in cfg.method_names],
                "bound, median (m)",
            ],
            [
                [
                    t["n_nlos"],
                    f"{t['attenuation_db']:g}",
                    f"{t['scenarios']} of {t['of']}",
                    *[fmt(t["rmse_m"][m], ".3g") for m in cfg.method_names],
                    fmt(t["bound_m"], ".3g"),
                ]
                for t in ident
            ],
        ),
    ]
    md_path = out_dir / f"{NAME}.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    return {
        "grid_floor_m": floor,
        "table": table,
        "below_grid_floor": below,
        "abs_error_percentiles_m": percentiles,
        "identifiable": {"limit_m": limit_m, "table": ident},
        "files": [md_path, *files],
    }


def _rmse_figure(cfg: Config, table: list[dict], floor: float, path: Path) -> Path:
    wf = get_profile(cfg.profile)
    gain = ebn0_gain_db(wf)
    methods = cfg.method_names
    fig = new_figure(4.2 * len(methods) + 0.6, 4.6)
    axes = np.atleast_1d(fig.subplots(1, len(methods), sharey=True))
    for ax, m in zip(axes, methods, strict=True):
        for j, p in enumerate(cfg.n_nlos):
            sel = [t for t in table if t["n_nlos"] == p]
            x = [t["ebn0_set_db"] for t in sel]
            ax.semilogy(x, [t["rmse_m"][m] for t in sel], "o-", color=f"C{j}", label=f"{p} NLoS")
            ax.semilogy(x, [t["crlb_m"] for t in sel], "--", color=f"C{j}", alpha=0.7)
            ax.semilogy(x, [t["kpath_crlb_m"] for t in sel], ":", color=f"C{j}", alpha=0.9)
            ax.semilogy(x, [t["product_crlb_m"] for t in sel], "-.", color=f"C{j}", alpha=0.6)
        ax.axhline(floor, color="gray", lw=1, ls=":", label=f"grid floor {floor:.2f} m")
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("Eb/N0, eq. (103) (dB)")
        ax.grid(which="both", alpha=0.3)
        attenuation_axis(ax, cfg.side_snr_at_zero_attenuation_db, gain)
    axes[0].set_ylabel(
        "range RMSE (m); dashed: R-CRLB; dotted / dash-dot: K-path CRLB, compound / "
        "product form (median of finite)"
    )
    axes[-1].legend(fontsize=8)
    fig.suptitle(
        f"Fig. 9b: range RMSE, {cfg.n_scenarios} scenarios x {cfg.n_measurements} measurements per point",
        fontsize=11,
    )
    return save_figure(fig, path)


def _cdf_figure(cfg: Config, cdf: dict, step_m: float, path: Path) -> Path:
    methods = cfg.method_names
    fig = new_figure(4.2 * len(methods) + 0.6, 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(methods), sharey=True))
    for ax, m in zip(axes, methods, strict=True):
        for j, p in enumerate(cfg.n_nlos):
            v = np.maximum(np.asarray(cdf[m][p]), 1e-4)
            if v.size:
                ax.step(v, np.arange(1, v.size + 1) / v.size, where="post", color=f"C{j}", label=f"{p} NLoS")
        ax.axvline(step_m, color="gray", ls=":", lw=1, label=f"grid step {step_m:.2f} m")
        ax.set_xscale("log")
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("absolute range error (m)")
        ax.grid(which="both", alpha=0.3)
    axes[0].set_ylabel("CDF")
    axes[-1].legend(fontsize=8, loc="lower right")
    fig.suptitle("Fig. 10: CDF of absolute range errors (all attenuations pooled)", fontsize=11)
    return save_figure(fig, path)
