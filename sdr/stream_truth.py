"""Ground truth carried in an IQ stream's metadata (the ``truth`` field of ``iq`` headers).

An emulated or replayed stream knows its answer; a radio stream does not and sends no
``truth``.  :class:`StreamTruth` is what travels: the true range and TX-RX distance, and the
packets (start sample at the working rate, bits as hex of ``numpy.packbits``).  A looped
emulator stream (``--loop-s``) repeats its packets every ``period_samples``; the worker expands
them with :meth:`StreamTruth.truth_packets` into the ``truth_packets`` the receiver compares
its decisions against (per-packet bit errors), and puts ``range_true_m`` on every epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_TRUTH_PACKETS = 2000  # per header (the header must stay under 64 KiB)
MAX_PACKET_BITS = 4096
MAX_EXPANDED_PACKETS = 200_000  # truth_packets of a looped stream: about 5 h at 10 packets/s


@dataclass(frozen=True)
class StreamTruth:
    """The truth of a stream; sample indices at the waveform's working rate, from stream sample 0."""

    range_true_m: float
    tx_rx_distance_m: float
    packet_start_sample: tuple[float, ...] = ()  # fractional with a sample-clock offset
    packet_bits_hex: tuple[str, ...] = ()
    bits_per_packet: int = 0
    period_samples: int = 0  # > 0: the packets repeat with this period (a looped stream)

    def __post_init__(self) -> None:
        for name in ("range_true_m", "tx_rx_distance_m"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"truth.{name} must be a finite number, got {v!r:.40}")
        n = len(self.packet_start_sample)
        if n > MAX_TRUTH_PACKETS or len(self.packet_bits_hex) != n:
            raise ValueError(
                f"truth packets: {n} starts and {len(self.packet_bits_hex)} bit strings "
                f"(equal counts, at most {MAX_TRUTH_PACKETS})"
            )
        if not all(
            isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s)
            for s in self.packet_start_sample
        ):
            raise ValueError("truth.packet_start_sample must be finite numbers")
        if not (0 <= self.bits_per_packet <= MAX_PACKET_BITS) or (n and self.bits_per_packet == 0):
            raise ValueError(
                f"truth.bits_per_packet must be in [1, {MAX_PACKET_BITS}], got {self.bits_per_packet!r:.40}"
            )
        need = 2 * (-(-self.bits_per_packet // 8))
        for h in self.packet_bits_hex:
            if not isinstance(h, str) or len(h) != need or not all(c in "0123456789abcdef" for c in h):
                raise ValueError(f"truth.packet_bits_hex: each entry must be {need} lower-case hex digits")
        if not isinstance(self.period_samples, int) or self.period_samples < 0:
            raise ValueError(f"truth.period_samples must be an integer >= 0, got {self.period_samples!r:.40}")

    # ----- wire ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "range_true_m": float(self.range_true_m),
            "tx_rx_distance_m": float(self.tx_rx_distance_m),
            "packet_start_sample": list(self.packet_start_sample),
            "packet_bits_hex": list(self.packet_bits_hex),
            "bits_per_packet": int(self.bits_per_packet),
            "period_samples": int(self.period_samples),
        }

    @classmethod
    def from_dict(cls, d: Any) -> StreamTruth:
        """Validate a header's ``truth`` object; raises ``ValueError`` naming the field."""
        if not isinstance(d, dict):
            raise ValueError(f"truth must be an object, got {type(d).__name__}")
        try:
            return cls(
                range_true_m=d["range_true_m"],
                tx_rx_distance_m=d["tx_rx_distance_m"],
                packet_start_sample=tuple(d.get("packet_start_sample") or ()),
                packet_bits_hex=tuple(d.get("packet_bits_hex") or ()),
                bits_per_packet=d.get("bits_per_packet", 0),
                period_samples=d.get("period_samples", 0),
            )
        except KeyError as exc:
            raise ValueError(f"truth lacks {exc.args[0]!r}") from None
        except TypeError as exc:
            raise ValueError(f"truth: {exc}") from None

    @classmethod
    def from_ground_truth(cls, truth: Any, period_samples: int = 0) -> StreamTruth:
        """From an emulator's :class:`~dsp.truth.GroundTruth` (or a capture's truth)."""
        bits = np.asarray(truth.packet_bits, np.uint8)
        starts = np.asarray(truth.packet_start_sample, np.float64)[:MAX_TRUTH_PACKETS]
        bits = bits[: starts.size]
        return cls(
            range_true_m=float(truth.range_true_m),
            tx_rx_distance_m=float(truth.tx_rx_distance_m),
            packet_start_sample=tuple(float(s) for s in starts),
            packet_bits_hex=tuple(np.packbits(b).tobytes().hex() for b in bits),
            bits_per_packet=int(bits.shape[1]) if bits.ndim == 2 and bits.size else 0,
            period_samples=int(period_samples),
        )

    # ----- receiver -----------------------------------------------------------------------------
    def truth_packets(self, work_index: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
        """``(start_sample, bits [packet, bit])`` relative to a receiver whose sample 0 is stream
        sample ``work_index`` (working rate), expanded over the loop when periodic."""
        if not self.packet_start_sample:
            return None
        base = np.asarray(self.packet_start_sample, np.float64)
        packed = np.frombuffer(bytes.fromhex("".join(self.packet_bits_hex)), np.uint8)
        bits = np.unpackbits(packed.reshape(len(self.packet_bits_hex), -1), axis=1)[:, : self.bits_per_packet]
        if self.period_samples > 0:
            loops = max(1, MAX_EXPANDED_PACKETS // base.size)
            first_loop = max(0, int(work_index) // self.period_samples - 1)
            shifts = (first_loop + np.arange(loops)) * self.period_samples
            base = (shifts[:, None] + base[None, :]).ravel()
            bits = np.tile(bits, (loops, 1))
        return base - int(work_index), bits


def stream_truth_of(source: Any) -> StreamTruth | None:
    """The truth a streamer's source knows: an emulator's (looped or not) or a capture's; ``None``
    for a radio or a capture without truth."""
    if getattr(source, "name", None) == "uhd":
        return None
    gt = getattr(source, "truth", None)
    if gt is None:
        cap = getattr(source, "_cap", None)  # sdr.sources.ReplaySource
        gt = cap.truth() if cap is not None and getattr(cap, "has_truth", False) else None
    if gt is None:
        return None
    period = 0
    loop_samples = getattr(source, "loop_samples", None)
    wf = getattr(source, "waveform", None)
    if loop_samples and wf is not None:  # capture-rate loop -> working-rate period
        period = round(loop_samples * wf.working_rate_hz / wf.capture_rate_hz)
    return StreamTruth.from_ground_truth(gt, period)
