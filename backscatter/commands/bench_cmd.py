"""``bench``: speed figures as medians of repeated runs, with ratios measured in the same run.

The replay stages (read, convert, ingest, receiver, results, end to end) and their definitions:
``bench_stages.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from backscatter.commands import bench_stages
from backscatter.commands.bench_music import music_latency
from backscatter.commands.bench_nomp import nomp_latency
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
        "working_rate_hz": wf.working_rate_hz,
        "median_wall_s": t,
        "seconds_per_emulated_second": t / duration_s,
        "target_seconds_per_emulated_second": 1.0,  # issue 15: real time on one core
        "samples_per_s": 3 * emu.n_total / t,
    }


def receiver_figures(r: dict) -> dict:
    """The receiver stage of ``bench_stages.stage_figures`` in the keys earlier benches reported."""
    samples, t_rx, t_copy = r["samples"], r["median_s"]["receiver"], r["median_s"]["copy"]
    return {
        "profile": r["profile"],
        "capture_rate_hz": r["capture_rate_hz"],
        "bands": r["bands"],
        "signal_s": r["signal_s"],
        "median_wall_s": t_rx,
        "samples_per_s": samples / t_rx,
        "realtime_factor": r["receiver_realtime_factor"],
        "numpy_copy_samples_per_s": samples / t_copy,
        "receiver_over_copy": r["ratio_to_copy"]["receiver"],
    }


def cmd_bench(args: argparse.Namespace) -> dict:
    if args.gui:
        return cmd_bench_gui(args)
    if args.pipeline or args.soak:
        return cmd_bench_pipeline(args)
    stages = [
        bench_stages.stage_figures("default", args.duration_s, args.repeats),
        bench_stages.stage_figures("x410-62m5", args.x410_duration_s, args.repeats),
    ]
    out = {
        "emulator": bench_emulator(args.duration_s, args.repeats),
        "stages": stages,
        "receiver": [receiver_figures(r) for r in stages],
        "music": music_latency(get_profile("default")),
        "nomp": nomp_latency(get_profile("default")),
        "nomp_product": nomp_latency(get_profile("default"), method_name="nomp_product"),
    }
    if args.json:
        print_json(out)
    else:
        for r in out["stages"]:
            print(bench_stages.describe(r))
        e = out["emulator"]
        print(
            f"emulator: {e['median_wall_s']:.2f} s per {e['emulated_s']:g} s of 3-band IQ at "
            f"{e['working_rate_hz'] / 1e6:g} MS/s (median of {args.repeats}; "
            f"real time: <= {e['emulated_s']:g} s), "
            f"{e['samples_per_s'] / 1e6:.0f} MS/s"
        )
        m = out["music"]
        print(
            f"MUSIC: {m['median_s'] * 1e3:.1f} ms median per estimate over {m['subcarriers']} subcarriers "
            f"(sub-vectors of {m['subvector_len']}, {m['repeats']} runs; "
            f"target <= {m['target_s'] * 1e3:.0f} ms)"
        )
        n = out["nomp"]
        print(
            f"NOMP: {n['median_s'] * 1e3:.1f} ms median per estimate ({n['estimates']} estimates, "
            f"{n['n_nlos']} NLoS per channel at {n['snr_db']:g} dB, median order {n['median_order']:g}; "
            f"target <= {n['target_s'] * 1e3:.0f} ms)"
        )
        n = out["nomp_product"]
        print(
            f"NOMP, side bands in product form: {n['median_s'] * 1e3:.1f} ms median per side-band "
            f"estimate ({n['estimates']} estimates, the same CFRs; target <= {n['target_s'] * 1e3:.0f} ms)"
        )
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed benchmarks (medians and ratios)")
    p.add_argument("--duration-s", type=float, default=1.0, help="seconds of signal per run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--x410-duration-s", type=float, default=1.0, help="seconds of x410-62m5 signal")
    p.add_argument(
        "--pipeline", action="store_true", help="streamer -> worker over loopback in real time (60 s)"
    )
    p.add_argument("--pipeline-duration-s", type=float, default=60.0, help="length of the --pipeline run")
    p.add_argument(
        "--pipeline-profile",
        default="default",
        help="--pipeline: waveform profile streamed (x410-62m5: 3 x 62.5 MS/s, 750 MB/s of sc16)",
    )
    p.add_argument("--soak", type=float, metavar="MINUTES", help="streamer, worker and recorder for MINUTES")
    p.add_argument(
        "--soak-record-s",
        type=float,
        default=30.0,
        help="--soak: seconds per recorder window, every 150 s (0: no recorder)",
    )
    p.add_argument(
        "--soak-drift",
        action="store_true",
        help="--soak: the sample clock tied to the LO, 9.80 ppm off (a 3.4 s loop slid by one symbol)",
    )
    p.add_argument("--gui", action="store_true", help="streamer, worker and GUI in Xvfb: the GUI's CPU share")
    p.add_argument("--gui-measure-s", type=float, default=30.0, help="--gui: seconds measured per run")
    p.add_argument("--gui-offscreen", action="store_true", help="--gui: QT_QPA_PLATFORM=offscreen, no Xvfb")
    p.add_argument("--gui-method", action="append", help="--gui: worker ranging method (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)


def cmd_bench_pipeline(args: argparse.Namespace) -> dict:
    """``--pipeline`` and ``--soak``: the live pipeline's figures (see bench_pipeline.py)."""
    from backscatter.commands import bench_pipeline

    if args.soak:
        out = bench_pipeline.bench_soak(args.soak, record_s=args.soak_record_s, drift=args.soak_drift)
    else:
        out = bench_pipeline.bench_pipeline(args.pipeline_duration_s, profile=args.pipeline_profile)
    if args.json:
        print_json(out)
    else:
        print(bench_pipeline.describe(out))
    return out


def cmd_bench_gui(args: argparse.Namespace) -> dict:
    """``--gui``: the monitor's CPU share beside a live worker (see bench_gui.py)."""
    from backscatter.commands import bench_gui

    out = bench_gui.bench_gui_repeated(
        args.repeats, measure_s=args.gui_measure_s, offscreen=args.gui_offscreen, methods=args.gui_method
    )
    if args.json:
        print_json(out)
    else:
        print(bench_gui.describe(out))
    return out
