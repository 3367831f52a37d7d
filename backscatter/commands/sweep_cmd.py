"""``sweep``: the paper's tables and figures as seeded, resumable sweeps on dask (docs/RESULTS.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from backscatter.output import CliError, print_json

# the sweeps of experiments.sweeps.SWEEPS, listed here so that building the parser imports nothing heavy
SWEEP_NAMES = ("ber", "impairments", "nmae", "ranging", "resolvability")


def cmd_sweep(args: argparse.Namespace) -> dict:
    from experiments.engine import EngineConfig, SweepError
    from experiments.sweeps import get_sweep, parse_overrides, run_sweep

    try:
        sweep = get_sweep(args.sweep)
        overrides = parse_overrides(sweep.config_cls, args.set or [])
        engine = EngineConfig(
            scheduler=args.scheduler,
            n_workers=args.workers,
            progress=not args.json and not args.no_progress,
        )
        summary = run_sweep(
            args.sweep,
            args.out,
            quick=args.quick,
            seed=args.seed,
            overrides=overrides,
            engine=engine,
            force=args.force,
        )
    except SweepError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json(summary)
        return summary
    print(
        f"sweep {summary['sweep']}{' (quick)' if summary['quick'] else ''}: {summary['runs']} runs "
        f"({summary['computed']} computed, {summary['reused']} reused from the checkpoint), "
        f"{summary['elapsed_s']:.1f} s on {summary['scheduler']}; root seed {summary['root_seed']}"
    )
    table = args.out / f"{summary['sweep']}.md"
    if table.exists():
        print()
        print(table.read_text(encoding="utf-8"))
    print("files:")
    for f in summary["files"]:
        print(f"  {f}")
    return summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a sweep on dask: the paper's figures (nmae, resolvability, ber, ranging), impairments",
        description=(
            "Run one sweep: one dask task per run, seeded from one recorded root seed, "
            "checkpointed (re-running the same command into the same --out resumes it). "
            "Writes runs.h5/runs.csv (raw), PNG figures, <sweep>.md and summary.json."
        ),
    )
    p.add_argument("sweep", choices=SWEEP_NAMES, help="which sweep")
    p.add_argument(
        "--out", type=Path, required=True, help="output directory (created; resumed if it holds this sweep)"
    )
    p.add_argument("--quick", action="store_true", help="small version (about a minute on two cores)")
    p.add_argument(
        "--seed", type=int, help="root seed (default: the directory's recorded one, else a fresh one)"
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="existing dask scheduler, e.g. tcp://host:8786 (default: LocalCluster)",
    )
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: one per core)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a configuration field, e.g. n_nlos=0,4 or n_scenarios=5 (repeatable)",
    )
    p.add_argument("--force", action="store_true", help="start the directory over (drops its checkpoint)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_sweep)
