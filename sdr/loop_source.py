"""A looping emulator source: a few seconds of emulated IQ, generated once, streamed forever.

The emulator takes about 1.1 s of one core per second of three-band signal at 30.72 MS/s, so it
cannot feed the streamer in real time.  :class:`LoopSource` pre-generates ``loop_s`` seconds of
an :class:`~sdr.sources.EmulatorSource` into memory as sc16 (int16 ``[channel, sample, 2]``,
the radio's native format, 4 bytes a complex sample: 368 MB per second of three bands) and then
yields those chunks again and again, with ``capture_index`` and ``time_s`` continuing across
loops as if it were one endless capture.  The streamer can then pace the default profile in
real time and a receiver sees an endless burst-mode stream.

The seam
    The loop length is a whole number of burst periods (``wf.burst_period_s``) and of OFDM
    symbols (``wf.fft_size`` samples), so across the seam packets keep their period (the next
    loop's first packet comes one burst period after the last one), the symbol timing keeps its
    offset modulo ``fft_size`` and, since packets lie wholly inside the loop, no packet
    straddles the seam.  What does *not* continue is the carrier phase: the emulated LO offset
    ``nu_b`` of band ``b`` (``lo_ppm`` on all bands, plus/minus the tag clock error on the
    side bands) advanced the phase by ``2 pi nu_b loop_s`` over a loop, and the next loop starts
    again from the initial phase, a jump of ``-2 pi frac(nu_b loop_s)`` at the seam (a few Hz
    to kHz of CFO over 1 s: an arbitrary jump).  The receiver handles it: the jump falls in the
    idle time between packets, the central band's CFO estimate is a forgetting average of
    window-to-window phase steps (one wrong step per loop is diluted), and every packet's
    side-band phase and residual frequency are estimated from that packet's own preamble and
    decisions (``tests/test_faults.py`` checks that packets after seams decode with CRC ok).
    The noise also repeats each loop, so results repeat: a loop source measures throughput,
    latency and losses, not statistics.

Drift across the seam
    A sample clock tied to the LO (``delta`` = ``lo_ppm``) slides the illumination by
    ``delta * T * fs`` working-rate samples over a loop of ``T`` seconds (30 samples for 1 s at
    1 ppm); the next loop would jump back, which no radio does.  The slide is invisible only
    when it is a whole number of OFDM symbols (the illumination is periodic in ``N``):
    ``delta = k N / (T fs)`` (:func:`seamless_drift_ppm`; 9.80 ppm for a 3.4 s loop of the
    default profile, 5.56 ppm for 6 s).  The central band's carrier phase then continues too,
    since ``fc`` is a whole number of subcarrier spacings: ``fc delta T = k N fc / fs`` cycles.
    A scenario that fixes ``lo_ppm`` to such a value keeps its clock tied (the drift the
    receiver must track for as long as the stream runs: ``bench --soak-drift``); any other
    drift is untied (``sample_clock_tied=False``) and every other impairment stays on.

``truth_packets_per_loop`` counts the packets whose start and end lie inside the loop: the
number of packet (and, in burst mode, ranging epoch) results a receiver should publish per loop
once it has acquired.  Injected drops (``scenario.drops``) come out as ``lost_before`` in every
loop.
"""

from __future__ import annotations

import math
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dsp.truth import GroundTruth
from dsp.waveform import WaveformConfig, get_profile
from sdr.emulator.emulator import capture_period
from sdr.emulator.scenario import ScenarioConfig
from sdr.scenario_args import scenario_from_args
from sdr.source_registry import SourceError, SourceKind, SourceSettings
from sdr.sources import DEFAULT_CHUNK_SAMPLES, Chunk, EmulatorSource
from sdr.transport import complex_to_sc16

_RATE_TOLERANCE = 1e-9  # relative: how close a duration must be to whole samples / units


def loop_unit_samples(wf: WaveformConfig, mode: str = "burst") -> int:
    """Samples (at the capture rate, as the emulator delivers them) in the shortest valid loop:
    the lcm of a burst period and the emulator's period (one OFDM symbol at the working rate,
    6250 samples = 3 symbols at 62.5 MS/s).

    CW mode has no packets: a whole number of periods suffices.  Raises ``ValueError``
    when the burst period is not a whole number of samples.
    """
    fs = wf.capture_rate_hz
    period = capture_period(wf)[1]
    if mode == "cw":
        return period
    burst = wf.burst_period_s * fs
    if abs(burst - round(burst)) > _RATE_TOLERANCE * burst:
        raise ValueError(
            f"burst period {wf.burst_period_s} s is not a whole number of samples at {fs:g} S/s: "
            "a loop cannot keep the packet period across its seam"
        )
    return math.lcm(round(burst), period)


def loop_samples_for(wf: WaveformConfig, mode: str, loop_s: float) -> int:
    """Samples in a loop of ``loop_s`` seconds; ``ValueError`` unless it is a whole number of
    loop units (:func:`loop_unit_samples`), naming the nearest valid lengths."""
    fs = float(wf.capture_rate_hz)
    unit = loop_unit_samples(wf, mode)
    units = loop_s * fs / unit
    whole = math.isfinite(units) and round(units) >= 1
    if not whole or abs(units - round(units)) > _RATE_TOLERANCE * units:
        near = sorted({max(1, math.floor(units)), max(1, math.ceil(units))}) if math.isfinite(units) else [1]
        raise ValueError(
            f"loop_s = {loop_s} s is not a whole number of {unit / fs:g} s loop units "
            f"(lcm of the {wf.burst_period_s:g} s burst period and {wf.fft_size}-sample "
            f"OFDM symbols at {fs:g} S/s); use " + " or ".join(f"{k * unit / fs:g} s" for k in near)
        )
    return round(units) * unit


def seamless_drift_ppm(wf: WaveformConfig, loop_samples: int, symbols: int = 1) -> float:
    """The sample-clock offset (ppm) that slides the illumination by exactly ``symbols`` OFDM
    symbols over a loop of ``loop_samples`` capture-rate samples (see "Drift across the seam")."""
    work = loop_samples * wf.working_rate_hz / wf.capture_rate_hz  # working-rate samples per loop
    return symbols * wf.fft_size / work * 1e6


def drift_is_seamless(wf: WaveformConfig, loop_samples: int, ppm: float) -> bool:
    """Whether a sample clock ``ppm`` off slides a loop by a whole number of OFDM symbols, to
    within 1e-3 working-rate samples (the seam's timing jump)."""
    slide = ppm * 1e-6 * loop_samples * wf.working_rate_hz / wf.capture_rate_hz  # working samples
    return abs(slide - wf.fft_size * round(slide / wf.fft_size)) < 1e-3


def complete_packets(truth: GroundTruth, wf: WaveformConfig, loop_samples: int, n_samples: int) -> int:
    """Packets wholly inside the first ``n_samples`` of a looped stream of ``truth``'s scenario.

    A packet counts when its start and end lie inside the loop (so inside every loop) and, in
    the last, partial loop, when it ends within ``n_samples``.  ``loop_samples`` and
    ``n_samples`` are at the capture rate; the truth's packet times at the working rate.
    """
    to_capture = wf.capture_rate_hz / wf.working_rate_hz
    starts = np.asarray(truth.packet_start_sample, np.float64) * to_capture
    ends = starts + wf.packet_bits * truth.tag_symbol_samples * to_capture
    inside = (starts >= 0) & (ends <= loop_samples)
    loops, rest = divmod(int(n_samples), int(loop_samples))
    return loops * int(np.count_nonzero(inside)) + int(np.count_nonzero(inside & (ends <= rest)))


class LoopSource:
    """An emulated scenario of ``loop_s`` seconds, generated once as sc16 and streamed cyclically.

    ``loop_s`` must be a whole number of loop units (:func:`loop_unit_samples`: 0.1 s for the
    default profile in burst mode); ``ValueError`` names the nearest valid lengths otherwise.
    ``duration_s`` (``None``: until :meth:`stop`) limits the stream, which then ends inside a
    loop if it is not a multiple of ``loop_s``.  ``seed`` overrides the scenario's; the
    scenario's own ``duration_s`` is replaced by ``loop_s``.  ``progress(samples)`` is called
    while the loop is generated.

    Chunks are read-only int16 ``[channel, sample, 2]`` arrays shared by every loop (the
    transport sends them zero-copy and never writes to them).
    """

    name = "emulator"
    is_live = False

    def __init__(
        self,
        scenario: ScenarioConfig,
        waveform: WaveformConfig,
        *,
        loop_s: float = 1.0,
        duration_s: float | None = None,
        seed: int | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
        progress: Callable[[int], None] | None = None,
    ):
        if chunk_samples < 1:
            raise ValueError(f"chunk_samples must be positive, got {chunk_samples}")
        if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
            raise ValueError(f"duration_s must be a positive number of seconds or None, got {duration_s}")
        fs = float(waveform.capture_rate_hz)  # the emulator delivers the capture rate
        self.loop_samples = loop_samples_for(waveform, scenario.mode, loop_s)
        # a drifting sample clock repeats seamlessly only when a loop slides the illumination by
        # whole symbols (see "Drift across the seam"); any other drift is untied
        seamless = scenario.lo_ppm is not None and drift_is_seamless(
            waveform, self.loop_samples, scenario.lo_ppm
        )
        if not seamless:
            scenario = scenario.replace(sample_clock_tied=False)
        self.loop_s = self.loop_samples / fs
        emu = EmulatorSource(
            scenario, waveform, seed=seed, duration_s=self.loop_s, chunk_samples=chunk_samples
        )
        if emu.total_samples != self.loop_samples:  # duration_s * fs must round to the loop
            raise ValueError(
                f"the emulator makes {emu.total_samples} samples of a {self.loop_s} s loop, "
                f"not {self.loop_samples}"
            )
        self.scenario = emu.scenario
        self.waveform: WaveformConfig = emu.waveform
        self.capture_rate_hz = emu.capture_rate_hz
        self.channels = list(emu.channels)
        self.chunk_samples = int(chunk_samples)
        self.truth: GroundTruth = emu.truth
        self._chunks: list[tuple[int, np.ndarray, int]] = []  # (loop offset, sc16 iq, lost_before)
        t0 = time.perf_counter()
        for c in emu:
            iq = complex_to_sc16(c.iq)
            iq.flags.writeable = False
            self._chunks.append((c.capture_index, iq, c.lost_before))
            if progress is not None:
                progress(c.n_samples + c.lost_before)
        self.generate_s = time.perf_counter() - t0
        """Seconds it took to emulate the loop."""
        last_off, last_iq, _ = self._chunks[-1]
        # samples dropped at the very end of the loop: lost before the next loop's first chunk
        self._tail_lost = self.loop_samples - (last_off + last_iq.shape[1])
        self.duration_s = duration_s
        self._end = None if duration_s is None else round(duration_s * fs)
        self._stop = False

    # ----- what a receiver should see -------------------------------------------------------
    @property
    def truth_packets_per_loop(self) -> int:
        """Packets whose start and end lie inside one loop (so also inside every later loop)."""
        return complete_packets(self.truth, self.waveform, self.loop_samples, self.loop_samples)

    def expected_packets(self, n_samples: int) -> int:
        """Complete packets in the first ``n_samples`` stream samples (counting every loop)."""
        return complete_packets(self.truth, self.waveform, self.loop_samples, n_samples)

    @property
    def bytes_per_loop(self) -> int:
        """Memory held by the pre-generated loop."""
        return sum(iq.nbytes for _, iq, _ in self._chunks)

    @property
    def total_samples(self) -> int | None:
        """Stream length for a progress bar (``None`` when it runs until stopped)."""
        return self._end

    def stream_report(self) -> dict[str, Any]:
        """The ``loop`` section of a stream summary: loop length (s), memory (bytes), packets
        per loop and the seconds it took to generate."""
        return {
            "loop": {
                "loop_s": self.loop_s,
                "loop_bytes": self.bytes_per_loop,
                "packets_per_loop": self.truth_packets_per_loop,
                "generate_s": self.generate_s,
            }
        }

    # ----- IQSource -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Chunk]:
        fs, end = self.capture_rate_hz, self._end
        loop = 0
        while True:
            base = loop * self.loop_samples
            for k, (off, iq, lost) in enumerate(self._chunks):
                if self._stop:
                    return
                first = base + off
                if end is not None and first >= end:
                    return
                if k == 0 and loop > 0:
                    lost += self._tail_lost
                if end is not None and first + iq.shape[1] > end:
                    iq = iq[:, : end - first]  # the last, partial chunk (copied on sending)
                yield Chunk(iq, first, first / fs, lost)
            loop += 1

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        self._stop = True


@dataclass(frozen=True, kw_only=True)
class LoopSettings(SourceSettings):
    """``scenario`` emulated for ``loop_s`` seconds (whole loop units) with waveform ``profile``
    and streamed for ``duration_s`` seconds (``None``: until stopped) in chunks of
    ``chunk_samples`` (at the capture rate)."""

    kind: ClassVar[str] = "loop"
    scenario: ScenarioConfig
    profile: str = "default"
    loop_s: float = 1.0
    duration_s: float | None = None
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES


class LoopKind(SourceKind):
    """The emulator with ``--loop-s`` (not a ``--source`` choice of its own): the scenario
    flags with ``--duration-s`` the stream length, not the scenario's."""

    name = "loop"
    Settings = LoopSettings
    emulated = True
    offered = False

    @classmethod
    def settings_from_args(
        cls, args: Any, *, scenario_defaults: Mapping[str, object] | None = None
    ) -> LoopSettings:
        looped = types.SimpleNamespace(**{**vars(args), "duration_s": args.loop_s})
        sc = scenario_from_args(looped, **(scenario_defaults or {}))
        return LoopSettings(
            scenario=sc,
            profile=args.profile,
            loop_s=args.loop_s,
            duration_s=args.duration_s,
            chunk_samples=args.chunk_samples,
        )

    @classmethod
    def open(cls, settings: LoopSettings, stop: threading.Event | None = None) -> LoopSource:
        def interrupt_generation(_: int) -> None:
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt

        try:
            return LoopSource(
                settings.scenario,
                get_profile(settings.profile),
                loop_s=settings.loop_s,
                duration_s=settings.duration_s,
                chunk_samples=settings.chunk_samples,
                progress=interrupt_generation,
            )
        except ValueError as exc:
            raise SourceError(str(exc)) from None
