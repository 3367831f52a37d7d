"""The configuration of a stream's GNU Radio ZMQ endpoints (``sdr.transport.gnuradio``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from dsp.config_base import ConfigBase
from sdr.transport.gr_align import ALIGN_MODES
from sdr.transport.wire import BAND_NAMES, IQ_FORMATS, MAX_SAMPLES, Channel

# messages queued per socket.  GNU Radio's sinks send what one work() call made: about 10,000
# items a message at 30.72 MS/s (measured: experiments/bench_gnuradio.py), so 3,000 messages hold
# about a second of a band (120 MB of int16 pairs, twice that of complex64 at worst) and a reader
# descheduled for that long by other load loses nothing; 1,000 (ZeroMQ's default) lost samples
# on this 2-core machine whenever a test run started beside it.  Our GNU Radio publisher's send
# queue uses the same bound.
GR_HWM = 3000


@dataclass(frozen=True)
class GnuRadioConfig(ConfigBase):
    """GNU Radio ZMQ endpoints of one stream, one per band, and how to read them.

    ``endpoints``: ``(band, endpoint)`` rows, central first; ``rf_centers_hz``: the RF centre of
    each row (same order); ``socket``: ``sub``/``pull`` to read GNU Radio sinks, ``pub``/``push``
    to feed its sources; ``item_format``: ``fc32`` (complex float32 items) or ``sc16`` (int16
    I/Q pairs, full scale 32767); ``tags``: messages carry GNU Radio tag headers
    (``pass_tags=True``); ``align``: see :mod:`sdr.transport.gr_align`; ``chunk_samples``: the
    largest aligned chunk handed on; ``max_buffer_samples``: per socket, while another lags.
    """

    endpoints: tuple[tuple[str, str], ...] = ()
    rf_centers_hz: tuple[float, ...] = ()
    capture_rate_hz: float = 30.72e6
    socket: str = "pull"
    item_format: str = "fc32"
    tags: bool = False
    align: str = "auto"
    chunk_samples: int = 1 << 18
    max_buffer_samples: int = 1 << 24

    RENAMED_KEYS: ClassVar[Mapping[str, str]] = {"sample_rate_hz": "capture_rate_hz"}

    def _validate(self) -> None:
        bands = [b for b, _ in self.endpoints]
        if len(bands) < 2 or bands[0] != "central" or len(set(bands)) != len(bands):
            self._fail("endpoints", f"need 'central' first and one or both side bands once each, got {bands}")
        if any(b not in BAND_NAMES for b in bands):
            self._fail("endpoints", f"bands must be among {list(BAND_NAMES)}, got {bands}")
        if any(not e.strip() for _, e in self.endpoints):
            self._fail("endpoints", "every band needs an endpoint such as tcp://127.0.0.1:5601")
        if len(self.rf_centers_hz) != len(bands) or not all(f > 0 for f in self.rf_centers_hz):
            self._fail("rf_centers_hz", f"need one positive RF centre per band ({len(bands)})")
        if not (0 < self.capture_rate_hz < 1e10):
            self._fail("capture_rate_hz", "must be a positive rate in Hz")
        if self.socket not in ("sub", "pull", "pub", "push"):
            self._fail("socket", "must be sub or pull (reading GNU Radio), pub or push (feeding it)")
        if self.item_format not in IQ_FORMATS:
            self._fail("item_format", f"must be one of {list(IQ_FORMATS)}")
        if self.align not in ALIGN_MODES:
            self._fail("align", f"must be one of {list(ALIGN_MODES)}")
        if self.align in ("time", "offset") and not self.tags:
            self._fail("align", f"{self.align!r} needs tag headers: set tags (pass_tags=True in GNU Radio)")
        if not (1 <= self.chunk_samples <= MAX_SAMPLES // len(bands)):
            self._fail("chunk_samples", f"must be in [1, {MAX_SAMPLES // len(bands)}]")
        if self.max_buffer_samples < self.chunk_samples:
            self._fail("max_buffer_samples", "must be at least chunk_samples")

    @property
    def bands(self) -> list[str]:
        return [b for b, _ in self.endpoints]

    @property
    def channels(self) -> tuple[Channel, ...]:
        return tuple(Channel(b, float(f)) for b, f in zip(self.bands, self.rf_centers_hz, strict=True))
