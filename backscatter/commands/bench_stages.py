"""``bench``: each stage of a replay (read, convert, receiver, results) against a numpy copy.

Definitions (one profile, one run):

* The samples: ``signal_s`` of three-band IQ at the profile's capture rate (emulated), written
  as a ``ci16_le`` capture in the writer's layout (chunks of 65536 samples, fletcher32) to a
  temporary file that is then in the page cache.
* ``copy``: ``np.copyto`` of those samples as complex64 ``[channel, sample]`` into a
  preallocated array (8 bytes per sample read and written).
* ``read``: every stored chunk of int16 pairs from the file into the reader's reused buffer,
  fletcher32 checked (``captures.ingest.SlabReader.raw_chunk``).
* ``checksum``: the fletcher32 check alone (part of ``read``) over the same bytes in memory, in
  pieces of one stored chunk (``captures.ingest.fletcher32``).
* ``convert``: int16 pairs already in memory to complex64 in a preallocated array
  (``dsp.sc16.sc16_to_complex64``).
* ``ingest``: ``Capture.read`` in replay's chunks: read and convert fused, new output arrays.
* ``receiver``: a fresh ``Receiver`` over the samples in memory as a radio or a ``ci16_le``
  capture delivers them, int16 pairs, in replay's chunks (it reads them in place at the working
  rate, dsp/direct_windows.py; a resampling profile converts them inside the stage).
* ``results``: ``summarise`` of that receiver run plus ``write_results`` to an HDF5 file.
* ``replay``: ``app.replay.replay_capture`` on the capture, end to end (open, read, receive,
  summarise), as ``backscatter replay`` runs it: a forked process reads ahead on the second core
  (``captures/read_ahead.py``) where there is one.
* ``replay_one_process``: the same with the reads in the receiver's own process
  (``read_ahead=False``), as the fan-out of many files runs each.

Every stage is timed once per round, in the same rounds as the copy (round-robin, so a busy
machine slows all of them alike); ``timings_s`` holds each stage's times in round order.
``ratio_to_copy[stage] = median(timings_s["copy"]) / median(timings_s[stage])``: the stage's
speed as a fraction of a copy of the same samples (1.0: as fast as the copy).
``replay.realtime_factor = signal_s / median(timings_s["replay"])``, and likewise
``replay.one_process_realtime_factor``.  The same stages' CPU
seconds of this process (``time.process_time``) are in ``cpu_timings_s`` with their ratios in
``ratio_to_copy_cpu``: on a shared machine they show the work without the waits for a core.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from app.replay import CHUNK, replay_capture
from app.run import Run, receive, summarise
from app.session import ReceiverSettings, emulated_radio, open_receiver
from captures.emulated import channels_for
from captures.format import complex_to_ci16
from captures.ingest import fletcher32
from captures.reader import open_capture
from captures.results_io import write_results
from captures.writer import CaptureWriter
from dsp.sc16 import sc16_to_complex64
from dsp.waveform import WaveformConfig, get_profile
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig

STAGES = (
    "copy",
    "read",
    "checksum",
    "convert",
    "ingest",
    "receiver",
    "results",
    "replay",
    "replay_one_process",
)
RATIO_STAGES = ("read", "checksum", "convert", "ingest", "receiver", "results")


def emulated_iq(profile: str, duration_s: float) -> tuple[WaveformConfig, list[str], np.ndarray, float, dict]:
    """Three-band complex64 IQ ``[channel, sample]`` at the profile's capture rate (the emulator's
    output rate), with the waveform, the bands, the TX-RX distance and what the signal has on
    (issue 15: "say which"): the emulator's impairments, its LO offset and sample-clock drift."""
    wf = get_profile(profile)
    sc = ScenarioConfig(duration_s=duration_s, seed=2, snr_lower_db=-25, snr_upper_db=-25)
    emu = Emulator(wf, sc)
    iq = np.ascontiguousarray(emu.generate(), np.complex64)
    signal = {
        "impairments": not sc.ideal,
        "lo_ppm": float(emu.lo_ppm),
        "sample_clock_drift_ppm": float(emu.sample_clock_ppm),
        "side_band_snr_db": sc.snr_lower_db,
    }
    return wf, list(sc.bands), iq, emu.truth.tx_rx_distance_m, signal


def write_capture(path: Path, wf: WaveformConfig, bands: list[str], iq: np.ndarray) -> None:
    """``iq`` (complex64 ``[channel, sample]`` at ``wf.capture_rate_hz``) as a ci16 capture."""
    with CaptureWriter(path, wf, channels_for(wf, bands), wf.capture_rate_hz, overwrite=True) as w:
        for a in range(0, iq.shape[1], 1 << 20):
            w.append(iq[:, a : a + (1 << 20)])


def _timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """Wall seconds, this process's CPU seconds, and what ``fn`` returned."""
    t0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - t0, time.process_time() - c0, value


def _results(run: Run, path: Path) -> None:
    write_results(path, run, summarise(run), force=True)


def ratios(timings_s: dict[str, list[float]]) -> dict[str, float | None]:
    """``median(copy) / median(stage)`` for every stage in ``RATIO_STAGES`` (``None`` for a
    median of zero, which only a coarse CPU clock gives)."""
    copy = statistics.median(timings_s["copy"])
    med = {s: statistics.median(timings_s[s]) for s in RATIO_STAGES}
    return {s: copy / t if t > 0 else None for s, t in med.items()}


def stage_figures(profile: str, duration_s: float, repeats: int, workdir: Path | None = None) -> dict:
    """Every stage's timings, ratios to the copy and the replay real-time factor (see module doc)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    wf, bands, iq, d0, signal = emulated_iq(profile, duration_s)
    tracking = ReceiverSettings(tx_rx_distance_m=d0).config().timing_tracking  # as _measure's receiver
    with tempfile.TemporaryDirectory(prefix="bench-stages-", dir=workdir) as tmp:
        path = Path(tmp) / f"{profile}.h5"
        write_capture(path, wf, bands, iq)
        out = _measure(path, wf, bands, iq, d0, repeats, Path(tmp))
    return {"profile": profile, "conditions": {**signal, "timing_tracking": tracking}, **out}


def _measure(
    path: Path, wf: WaveformConfig, bands: list[str], iq: np.ndarray, d0: float, repeats: int, tmp: Path
) -> dict:
    n_ch, n = iq.shape
    dst = np.empty_like(iq)
    dst.fill(0)  # pages mapped before timing
    pairs = complex_to_ci16(iq)
    settings = ReceiverSettings(tx_rx_distance_m=d0)
    radio = emulated_radio(wf, bands, wf.capture_rate_hz)
    signal_s = n / wf.capture_rate_hz

    def receiver() -> Run:
        rx = open_receiver(settings, radio)
        chunks = ((pairs[:, a : a + CHUNK], 0) for a in range(0, n, CHUNK))
        return receive(rx, chunks, wf, signal_s, None)

    timings: dict[str, list[float]] = {s: [] for s in STAGES}
    cpu_timings: dict[str, list[float]] = {s: [] for s in STAGES}
    with open_capture(path) as cap:
        reader = cap.slab_reader
        if not reader.fast:
            raise RuntimeError(f"{path}: the writer's layout should take the raw-chunk path")
        n_chunks = -(-n // reader.chunk_samples)

        def read() -> None:
            for k in range(n_chunks):
                if reader.raw_chunk(k) is None:
                    raise RuntimeError(f"{path}: chunk {k} failed its checksum")

        stored = pairs.reshape(-1).view(np.uint8)
        piece = n_ch * reader.chunk_samples * 4  # bytes of one stored chunk

        def checksum() -> None:
            for a in range(0, stored.size, piece):
                fletcher32(stored[a : a + piece])

        def ingest() -> None:
            for a in range(0, n, CHUNK):
                cap.read(a, a + CHUNK)

        def timed(stage: str, fn: Callable[[], object]) -> object:
            wall, cpu, value = _timed(fn)
            timings[stage].append(wall)
            cpu_timings[stage].append(cpu)
            return value

        for _ in range(repeats):
            timed("copy", lambda: np.copyto(dst, iq))
            timed("read", read)
            timed("checksum", checksum)
            timed("convert", lambda: sc16_to_complex64(pairs, dst))
            timed("ingest", ingest)
            run = timed("receiver", receiver)
            timed("results", partial(_results, run, tmp / "results.h5"))
            timed("replay", partial(replay_capture, path, settings))
            timed("replay_one_process", partial(replay_capture, path, settings, read_ahead=False))
    med = {s: statistics.median(v) for s, v in timings.items()}
    samples = n_ch * n
    return {
        "capture_rate_hz": wf.capture_rate_hz,
        "bands": n_ch,
        "signal_s": signal_s,
        "samples": samples,
        "repeats": repeats,
        "timings_s": timings,
        "median_s": med,
        "samples_per_s": {s: samples / t for s, t in med.items()},
        "ratio_to_copy": ratios(timings),
        "cpu_timings_s": cpu_timings,
        "ratio_to_copy_cpu": ratios(cpu_timings),
        "replay": {
            "median_wall_s": med["replay"],
            "realtime_factor": signal_s / med["replay"],
            "one_process_realtime_factor": signal_s / med["replay_one_process"],
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        },
        "receiver_realtime_factor": signal_s / med["receiver"],
    }


def describe(r: dict) -> str:
    """Human lines for one profile's stage figures."""
    mss, c = r["samples_per_s"], r["conditions"]

    def fmt(ratio: dict) -> str:
        return ", ".join(f"{s} {ratio[s]:.2f}" if ratio[s] is not None else f"{s} -" for s in RATIO_STAGES)

    return (
        f"stages {r['profile']:10s}: {r['bands']} bands at {r['capture_rate_hz'] / 1e6:g} MS/s, "
        f"{r['signal_s']:g} s, median of {r['repeats']}; ratio to a numpy copy of the same samples "
        f"({mss['copy'] / 1e6:.0f} MS/s): {fmt(r['ratio_to_copy'])}\n"
        f"  CPU time ratios: {fmt(r['ratio_to_copy_cpu'])}\n"
        f"  replay end to end {r['replay']['realtime_factor']:.2f}x real time, reading ahead in a second "
        f"process ({r['replay']['one_process_realtime_factor']:.2f}x in one) "
        f"(receiver alone {r['receiver_realtime_factor']:.2f}x; ingest {mss['ingest'] / 1e6:.0f} MS/s, "
        f"read {mss['read'] / 1e6:.0f} MS/s, convert {mss['convert'] / 1e6:.0f} MS/s)\n"
        f"  with impairments {'on' if c['impairments'] else 'off'} (LO {c['lo_ppm']:+.2f} ppm, sample clock "
        f"drifting {c['sample_clock_drift_ppm']:+.2f} ppm) and timing tracking "
        f"{'on' if c['timing_tracking'] else 'off'}"
    )
