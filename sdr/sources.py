"""IQ sources for the streamer: the :class:`IQSource` interface, emulator and replay sources, pacing.

A source describes its stream (rate, channels, waveform) and yields :class:`Chunk` objects in
sample order.  ``backscatter stream`` sends every chunk as one IQ message
(``sdr/MESSAGES.md``), paced by a :class:`Pacer` unless the source is live (a radio delivers
samples at its own rate) or ``--as-fast-as-possible`` is given.

Implementations here: :class:`EmulatorSource` (the software channel emulator) and
:class:`ReplaySource` (a capture file), registered as the source kinds ``emulator`` and
``replay`` (``sdr/source_registry.py``); the loop, the radio and a live stream are in
``sdr/loop_source.py``, ``sdr/uhd_source.py`` (its kind in ``sdr/uhd_cli.py``) and
``sdr/stream_source.py``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from captures.reader import open_capture
from dsp.truth import GroundTruth
from dsp.waveform import WaveformConfig, get_profile
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from sdr.scenario_args import scenario_from_args
from sdr.source_registry import DEFAULT_CHUNK_SAMPLES, SourceError, SourceKind, SourceSettings, get_kind

__all__ = [
    "DEFAULT_CHUNK_SAMPLES",
    "Chunk",
    "ChunkLike",
    "EmulatorKind",
    "EmulatorSettings",
    "EmulatorSource",
    "IQSource",
    "Pacer",
    "ReplayKind",
    "ReplaySettings",
    "ReplaySource",
    "chunk_iq",
]


class ChunkLike(Protocol):
    """What the streamer reads from a chunk (``Chunk`` here, ``UHDChunk`` in ``sdr/uhd_source.py``)."""

    iq: np.ndarray
    capture_index: int
    time_s: float
    lost_before: int


@dataclass(frozen=True)
class Chunk:
    """A run of contiguous samples from a source.

    ``iq``: complex64 ``[channel, sample]`` (1.0 = full scale), or the radio's native sc16 as
    int16, interleaved I/Q with 32767 = 1.0, either ``[channel, sample, 2]`` or
    ``[channel, 2 * sample]`` (same memory; :func:`chunk_iq` normalises to the former).  The
    streamer converts to the wire format only when they differ.  Every chunk must own its
    array (never a buffer the source reuses): the transport sends it zero-copy.
    ``capture_index``: index of the first sample in the stream at ``capture_rate_hz``, counting
    lost samples (0 for the first sample the source produced).
    ``time_s``: time of the first sample (radio time for UHD, ``capture_index / rate`` for the
    emulator, the capture's ``time_first_sample_s`` plus the offset for replay).
    ``lost_before``: samples lost immediately before this chunk (overflow, injected drop, gap);
    ``capture_index`` already counts them.
    """

    iq: np.ndarray
    capture_index: int
    time_s: float
    lost_before: int = 0

    @property
    def n_samples(self) -> int:
        return int(self.iq.shape[1])


def chunk_iq(chunk: ChunkLike) -> np.ndarray:
    """A chunk's samples as complex ``[channel, sample]`` or sc16 int16 ``[channel, sample, 2]``.

    int16 ``[channel, 2 * sample]`` is viewed (not copied) as ``[channel, sample, 2]``.
    """
    iq = chunk.iq
    if iq.dtype == np.int16 and iq.ndim == 2:
        if iq.shape[1] % 2:
            raise ValueError(f"interleaved sc16 [channel, 2 * sample] needs an even row length: {iq.shape}")
        return np.ascontiguousarray(iq).reshape(iq.shape[0], iq.shape[1] // 2, 2)
    return iq


@runtime_checkable
class IQSource(Protocol):
    """What the streamer needs from a source of IQ (emulator, capture replay, radio).

    Attributes (constant for the life of the source):

    * ``name``: ``"emulator"``, ``"replay"``, ``"uhd"``, ``"stream"``, ... (the ``source`` field on the wire).
    * ``capture_rate_hz``: rate of every channel as delivered (the capture rate).
    * ``channels``: one ``(band, rf_center_hz)`` per row of the chunks' ``iq``, bands from
      ``central``, ``lower``, ``upper``, each at most once.
    * ``waveform``: the transmitted :class:`~dsp.waveform.WaveformConfig`; its
      ``capture_rate_hz`` should equal ``capture_rate_hz`` (consumers override it with the rate).

    Methods:

    * ``__iter__()``: yields chunks (:class:`ChunkLike`: ``iq``, ``capture_index``, ``time_s``,
      ``lost_before``, as documented on :class:`Chunk`) in sample order (``capture_index``
      strictly increasing, contiguous unless ``lost_before`` says otherwise); ends when the
      source is exhausted or after ``stop()``.
    * ``stop()``: ask the iteration to end soon; called from the SIGINT/SIGTERM handler, so it
      must only set a flag.  A live source should return from a blocking receive at least
      about once a second to notice it.
    * ``close()``: release the file or device; idempotent.  The streamer calls it once it has
      stopped iterating (the iterator may be left unfinished).

    Optional attributes, read with ``getattr``: ``is_live`` (``True`` when the source itself
    delivers samples in real time, so the streamer never paces it; default: its kind's ``live``
    in ``sdr/source_registry.py``), ``total_samples`` (stream length for a progress bar, lost
    samples included), ``behind_hint`` (what to add to the warning when a paced source falls
    behind the sample clock) and ``stream_report()`` (extra sections of the stream summary).
    """

    name: str
    capture_rate_hz: float
    channels: list[tuple[str, float]]
    waveform: WaveformConfig

    def __iter__(self) -> Iterator[ChunkLike]: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


def _split(
    iq: np.ndarray, capture_index: int, lost_before: int, fs: float, t0: float, chunk: int
) -> Iterator[Chunk]:
    """Pieces of at most ``chunk`` samples of one contiguous run, as :class:`Chunk`."""
    n = iq.shape[1]
    for off in range(0, n, chunk):
        s = capture_index + off
        yield Chunk(iq[:, off : off + chunk], s, t0 + s / fs, lost_before if off == 0 else 0)


class EmulatorSource:
    """The software channel emulator as a source: complex64 chunks at the capture rate.

    Like a radio, and like ``captures.emulated`` (emulated captures), the emulator produces
    the profile's capture rate: ``capture_rate_hz`` is ``waveform.capture_rate_hz`` (62.5 MS/s
    for ``x410-62m5``); the receiver resamples to the working rate.  Injected drops
    (``scenario.drops``) come out as ``lost_before``.  ``seed`` and ``duration_s`` override
    the scenario's.
    """

    name = "emulator"
    is_live = False
    behind_hint = "; --loop-s streams a pre-generated loop in real time"

    def __init__(
        self,
        scenario: ScenarioConfig,
        waveform: WaveformConfig,
        *,
        seed: int | None = None,
        duration_s: float | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    ):
        if chunk_samples < 1:
            raise ValueError(f"chunk_samples must be positive, got {chunk_samples}")
        changes: dict[str, object] = {}
        if seed is not None:
            changes["seed"] = seed
        if duration_s is not None:
            changes["duration_s"] = duration_s
        self.scenario = scenario.replace(**changes) if changes else scenario
        self._emu = Emulator(waveform, self.scenario)
        self.waveform: WaveformConfig = self._emu.wf
        self.capture_rate_hz = float(self._emu.rate_hz)
        centers = self.waveform.band_centers_hz
        self.channels = [(b, float(centers[b])) for b in self.scenario.bands]
        self.chunk_samples = int(chunk_samples)
        self._stop = False

    @property
    def truth(self) -> GroundTruth:
        return self._emu.truth

    @property
    def total_samples(self) -> int:
        """Samples in the scenario, lost ones included."""
        return int(self._emu.n_total)

    def __iter__(self) -> Iterator[Chunk]:
        fs = self.capture_rate_hz
        for blk in self._emu.blocks():
            for chunk in _split(blk.iq, blk.index, blk.lost_before, fs, 0.0, self.chunk_samples):
                if self._stop:
                    return
                yield chunk

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        self._stop = True


class ReplaySource:
    """A capture file as a source: complex64 chunks at the capture's rate, gaps as ``lost_before``.

    A recording left behind by a killed recorder (still flagged open for SWMR writing) is
    read up to its last flush.
    """

    name = "replay"
    is_live = False

    def __init__(self, path: str | os.PathLike, *, chunk_samples: int = DEFAULT_CHUNK_SAMPLES):
        if chunk_samples < 1:
            raise ValueError(f"chunk_samples must be positive, got {chunk_samples}")
        self.path = Path(path)
        self._cap = open_capture(self.path)
        self.waveform: WaveformConfig = self._cap.waveform
        self.capture_rate_hz = float(self._cap.capture_rate_hz)
        self.channels = [(c.band, float(c.center_freq_hz)) for c in self._cap.channels]
        self.chunk_samples = int(chunk_samples)
        self.time_first_sample_s = float(self._cap.time_first_sample_s)
        self._stop = False

    @property
    def total_samples(self) -> int:
        """Samples in the stream, lost ones included."""
        return self._cap.n_samples + int(self._cap.gaps[:, 1].sum())

    def __iter__(self) -> Iterator[Chunk]:
        fs, t0 = self.capture_rate_hz, self.time_first_sample_s
        lost_total = 0
        for start, iq, lost in self._cap.iter_chunks(self.chunk_samples, pairs=True):  # ci16: as stored
            if self._stop:
                return
            lost_total += lost
            s = start + lost_total
            yield Chunk(iq, s, t0 + s / fs, lost)

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        self._stop = True
        self._cap.close()


@dataclass(frozen=True, kw_only=True)
class EmulatorSettings(SourceSettings):
    """The emulator: ``scenario``, the waveform ``profile`` and ``chunk_samples`` (samples per
    chunk at the capture rate)."""

    kind: ClassVar[str] = "emulator"
    scenario: ScenarioConfig
    profile: str = "default"
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES


class EmulatorKind(SourceKind):
    """``--source emulator``: the scenario flags (``--duration-s`` default 1 s); with
    ``--loop-s`` the loop source instead (``sdr/loop_source.py``)."""

    name = "emulator"
    Settings = EmulatorSettings
    emulated = True

    @classmethod
    def settings_from_args(
        cls, args: Any, *, scenario_defaults: Mapping[str, object] | None = None
    ) -> SourceSettings:
        if getattr(args, "loop_s", None) is not None:
            return get_kind("loop").settings_from_args(args, scenario_defaults=scenario_defaults)
        sc = scenario_from_args(args, **{"duration_s": 1.0, **(scenario_defaults or {})})
        return EmulatorSettings(scenario=sc, profile=args.profile, chunk_samples=args.chunk_samples)

    @classmethod
    def open(cls, settings: EmulatorSettings, stop: threading.Event | None = None) -> EmulatorSource:
        wf = get_profile(settings.profile)
        return EmulatorSource(settings.scenario, wf, chunk_samples=settings.chunk_samples)


@dataclass(frozen=True, kw_only=True)
class ReplaySettings(SourceSettings):
    """A capture file ``path`` replayed in chunks of ``chunk_samples`` (at the capture's rate)."""

    kind: ClassVar[str] = "replay"
    path: Path
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES


class ReplayKind(SourceKind):
    """``--source replay --file CAPTURE.h5``."""

    name = "replay"
    Settings = ReplaySettings
    takes_file = True

    @classmethod
    def settings_from_args(
        cls, args: Any, *, scenario_defaults: Mapping[str, object] | None = None
    ) -> ReplaySettings:
        if args.file is None:
            raise SourceError("--source replay needs --file CAPTURE.h5")
        return ReplaySettings(path=Path(args.file), chunk_samples=args.chunk_samples)

    @classmethod
    def open(cls, settings: ReplaySettings, stop: threading.Event | None = None) -> ReplaySource:
        return ReplaySource(settings.path, chunk_samples=settings.chunk_samples)


class Pacer:
    """Releases chunks at the sample rate: a chunk leaves when its last sample would have
    been received, by the wall clock measured from the first chunk (no drift accumulates).

    ``realtime=False`` never waits.  ``clock`` and ``sleep`` are injectable for tests (a
    ``stop`` event, when given, is waited on instead of ``sleep``).  ``lag_s`` is the largest
    lateness seen (the pipeline slower than real time).
    """

    def __init__(
        self,
        capture_rate_hz: float,
        realtime: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not capture_rate_hz > 0:
            raise ValueError(f"capture_rate_hz must be positive, got {capture_rate_hz}")
        self.capture_rate_hz = float(capture_rate_hz)
        self.realtime = realtime
        self._clock, self._sleep = clock, sleep
        self._t0: float | None = None
        self._s0 = 0
        self.lag_s = 0.0

    def due_s(self, capture_index: int, n_samples: int) -> float:
        """Clock time at which the chunk is due (starts the clock on the first call)."""
        if self._t0 is None:
            self._t0, self._s0 = self._clock(), capture_index
        return self._t0 + (capture_index + n_samples - self._s0) / self.capture_rate_hz

    def hold(self, seconds: float) -> None:
        """Move the schedule ``seconds`` later: the streamer was held back by something other
        than the source (a consumer it waited for before giving it up)."""
        if self._t0 is not None and seconds > 0:
            self._t0 += seconds

    def wait(self, capture_index: int, n_samples: int, stop: threading.Event | None = None) -> bool:
        """Wait until the chunk is due; ``False`` if ``stop`` was set meanwhile."""
        due = self.due_s(capture_index, n_samples)
        if not self.realtime:
            return not (stop is not None and stop.is_set())
        while (delay := due - self._clock()) > 0:
            if stop is None:
                self._sleep(delay)
            elif stop.wait(delay):
                return False
        self.lag_s = max(self.lag_s, -delay)
        return not (stop is not None and stop.is_set())
