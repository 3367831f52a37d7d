"""``bench``: speed figures as medians of repeated runs, with ratios measured in the same run."""

from __future__ import annotations

import argparse
import statistics
import time

from backscatter.output import print_json
from dsp.waveform import get_profile
from sdr.emulator.emulator import SYMBOLS_PER_BLOCK, Emulator
from sdr.emulator.scenario import ScenarioConfig


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_emulator(duration_s: float = 1.0, repeats: int = 3) -> dict:
    """Seconds to emulate ``duration_s`` of three-band IQ of the default profile."""
    wf = get_profile("default")
    sc = ScenarioConfig(duration_s=duration_s, n_nlos=8, mode="burst", seed=1)
    emu = Emulator(wf, sc)
    n_blocks = -(-emu.n_total // (SYMBOLS_PER_BLOCK * wf.fft_size))

    def run() -> None:
        for b in range(n_blocks):
            emu.generate_block(b)

    t = _median_time(run, repeats)
    return {
        "emulated_s": duration_s,
        "bands": 3,
        "sample_rate_hz": wf.sample_rate_hz,
        "median_wall_s": t,
        "seconds_per_emulated_second": t / duration_s,
        "target_seconds_per_emulated_second": 3.0,
        "samples_per_s": 3 * emu.n_total / t,
    }


def cmd_bench(args: argparse.Namespace) -> dict:
    out = {"emulator": bench_emulator(args.duration_s, args.repeats)}
    if args.json:
        print_json(out)
    else:
        e = out["emulator"]
        print(
            f"emulator: {e['median_wall_s']:.2f} s per {e['emulated_s']:g} s of 3-band IQ at "
            f"{e['sample_rate_hz'] / 1e6:g} MS/s (median of {args.repeats}; target <= 3 s), "
            f"{e['samples_per_s'] / 1e6:.0f} MS/s"
        )
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed benchmarks (medians and ratios)")
    p.add_argument("--duration-s", type=float, default=1.0, help="seconds of signal per run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)
