"""``crlb``: Cramer-Rao bounds on the range RMSE (SYSTEM.md section 7, eq. (84)-(99))."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from backscatter.commands.captures_cmd import scenario_from_args
from backscatter.output import CliError, print_json
from dsp.channel import Paths
from dsp.crlb import SIDE_BANDS, RangeBound, range_bound, single_path_range_bound, stochastic_range_bound
from dsp.waveform import PROFILES, get_profile
from sdr.emulator.emulator import Emulator
from sdr.emulator.geometry import draw_paths

DEFAULT_TRIALS = 20  # random scenarios per point in the paper's Fig. 9


def cmd_crlb(args: argparse.Namespace) -> dict:
    wf = get_profile(args.profile)
    sc = scenario_from_args(args)
    band = args.band or next(b for b in sc.bands if b != "central")
    if not (np.isfinite(args.symbols) and args.symbols >= 1):
        raise CliError(f"--symbols must be at least 1, got {args.symbols}")
    if args.trials is not None and args.trials < 1:
        raise CliError(f"--trials must be at least 1, got {args.trials}")
    snr_central, snr_side = sc.snr_central_db, getattr(sc, f"snr_{band}_db")
    emu = Emulator(wf, sc)  # the scenario's own channels, as `emulate` draws them
    channels = (emu.paths_tx_rx, emu.paths_tx_tag, emu.paths_tag_rx)
    try:
        known = range_bound(wf, *channels, snr_central, snr_side, args.symbols, band)
        stochastic = None
        if args.paths is not None or args.trials is not None:
            if sc.explicit_paths:
                raise CliError("the stochastic R-CRLB needs a geometric scenario, not explicit path lists")
            trials = args.trials or DEFAULT_TRIALS

            def sample(rng: np.random.Generator) -> tuple[Paths, Paths, Paths]:
                return draw_paths(sc, wf, rng)[:3]

            bound = stochastic_range_bound(
                wf, sample, trials, sc.seed, snr_central, snr_side, args.symbols, band
            )
            stochastic = {"n_nlos": sc.n_nlos, "trials": trials, "seed": sc.seed, **bound.to_dict()}
    except ValueError as exc:
        raise CliError(str(exc)) from None
    closed = single_path_range_bound(wf, snr_central, snr_side, args.symbols)
    out = {
        "profile": wf.profile,
        "band": band,
        "subcarriers": len(wf.active_subcarriers),
        "n_symbols": args.symbols,
        "snr_db": {"central": snr_central, band: snr_side},
        "scenario": {
            "seed": sc.seed,
            "explicit_paths": sc.explicit_paths,
            "paths_per_channel": [len(p) for p in channels],
            "tx_rx_distance_m": emu.truth.tx_rx_distance_m,
            "range_true_m": emu.truth.range_true_m,
        },
        "bound_m": known.to_dict(),
        "single_path_m": closed.to_dict(),
        "stochastic": stochastic,
    }
    if args.json:
        print_json(out)
    else:
        _print_text(out, known, closed)
    return out


def _row(label: str, d: dict) -> str:
    return f"  {label:34s}{d['direct_m']:12.4g}{d['backscatter_m']:13.4g}{d['bistatic_m']:12.4g}"


def _print_text(out: dict, known: RangeBound, closed: RangeBound) -> None:
    s, band = out["scenario"], out["band"]
    print(
        f"range RMSE bound in metres: profile {out['profile']}, {out['subcarriers']} subcarriers, "
        f"{out['n_symbols']:g} OFDM symbol(s) averaged"
    )
    print(f"  SNR per subcarrier: central {out['snr_db']['central']:g} dB, {band} {out['snr_db'][band]:g} dB")
    kind = "explicit paths" if s["explicit_paths"] else f"seed {s['seed']}"
    print(
        f"  scenario ({kind}): {s['paths_per_channel']} paths (TX-RX, TX-tag, tag-RX); "
        f"TX-RX {s['tx_rx_distance_m']:.3f} m, TX-tag-RX {s['range_true_m']:.3f} m"
    )
    print(f"  {'':34s}{'direct':>12s}{'backscatter':>13s}{'bistatic':>12s}")
    print(_row("CRLB, known multipath", known.to_dict()))
    print(_row("single path (closed form)", closed.to_dict()))
    st = out["stochastic"]
    if st is not None:
        print(_row(f"stochastic R-CRLB ({st['n_nlos']} NLoS, {st['trials']} trials)", st))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("crlb", help="Cramer-Rao bound on the range RMSE (direct, backscatter, bistatic)")
    p.add_argument("--profile", default="default", choices=sorted(PROFILES), help="waveform profile")
    p.add_argument("--scenario", type=Path, help="scenario JSON (ScenarioConfig keys); flags override it")
    p.add_argument("--seed", type=int, help="scenario seed; also seeds the stochastic draws")
    p.add_argument("--snr-db", type=float, help="side-band SNR per subcarrier and OFDM symbol, dB")
    p.add_argument("--central-snr-db", type=float, help="central-band SNR per subcarrier and OFDM symbol, dB")
    p.add_argument("--paths", type=int, help="NLoS paths per channel; adds the stochastic R-CRLB")
    p.add_argument(
        "--trials", type=int, help=f"random scenarios of the stochastic R-CRLB (default {DEFAULT_TRIALS})"
    )
    p.add_argument("--symbols", type=float, default=1.0, help="OFDM symbols averaged per CFR estimate")
    p.add_argument("--band", choices=SIDE_BANDS, help="side band (default: the scenario's first)")
    p.add_argument("--json", action="store_true", help="print JSON")
    # scenario_from_args also reads these emulation flags, which do not change the bound
    p.set_defaults(func=cmd_crlb, duration_s=None, mode=None)
