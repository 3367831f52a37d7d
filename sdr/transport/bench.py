"""Throughput of the IQ path: bare ZeroMQ PUSH/PULL against the full publisher/subscriber path.

``compare_pushpull_throughput`` interleaves both on the same buffers, so their ratio is measured in
one run (figures vary from run to run; ratios are what to compare).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import zmq

from dsp.waveform import WaveformConfig
from sdr.transport.publishers import IQPublisher
from sdr.transport.subscribers import IQSubscriber
from sdr.transport.wire import BAND_NAMES, IQ_HWM


def _timed_transfer(send_all: Callable[[], None], recv_one: Callable[[], None], n: int) -> float:
    """Seconds from the first send until ``n`` messages were received (receiver in a thread)."""
    errors: list[BaseException] = []

    def receiver() -> None:
        try:
            for _ in range(n):
                recv_one()
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    th = threading.Thread(target=receiver, daemon=True)
    th.start()
    t0 = time.perf_counter()
    send_all()
    th.join()
    t = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return t


def _check_buffers(buffers: Sequence[np.ndarray]) -> int:
    if not buffers:
        raise ValueError("no buffers to send")
    for b in buffers:
        if not (b.dtype == np.complex64 and b.ndim == 2) and not (b.dtype == np.int16 and b.ndim == 3):
            raise ValueError(
                "buffers must be complex64 [channel, sample] or sc16 int16 [channel, sample, 2], "
                f"got {b.dtype} {b.shape}"
            )
    if buffers[0].shape[0] > len(BAND_NAMES):
        raise ValueError(f"the pipeline benchmark sends at most {len(BAND_NAMES)} channels (bands)")
    return sum(b.nbytes for b in buffers)


class _BareLink:
    """PUSH -> PULL over tcp loopback, one zero-copy frame per buffer."""

    def __init__(self, ctx: zmq.Context):
        self.push, self.pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
        for sock in (self.push, self.pull):
            sock.setsockopt(zmq.LINGER, 0)
        self.push.setsockopt(zmq.SNDHWM, IQ_HWM)
        self.pull.setsockopt(zmq.RCVHWM, IQ_HWM)
        self.push.bind("tcp://127.0.0.1:*")
        self.pull.connect(self.push.getsockopt_string(zmq.LAST_ENDPOINT))

    def seconds(self, buffers: Sequence[np.ndarray]) -> float:
        def send_all() -> None:
            for b in buffers:
                self.push.send(np.ascontiguousarray(b), copy=False)

        return _timed_transfer(send_all, lambda: self.pull.recv(copy=False), len(buffers))

    def close(self) -> None:
        self.push.close()
        self.pull.close()


class _PipelineLink:
    """:class:`IQPublisher` (push) -> :class:`IQSubscriber` (pull) over tcp loopback."""

    def __init__(self, ctx: zmq.Context, buffers: Sequence[np.ndarray]):
        wf = WaveformConfig()
        bands = BAND_NAMES[: buffers[0].shape[0]]
        self.pub = IQPublisher(
            "tcp://127.0.0.1:*",
            capture_rate_hz=wf.working_rate_hz,
            channels=[(b, wf.band_centers_hz[b]) for b in bands],
            waveform=wf,
            source="replay",
            mode="push",
            fmt="sc16" if buffers[0].dtype == np.int16 else "fc32",
            context=ctx,
        )
        self.sub = IQSubscriber(self.pub.endpoint, mode="pull", context=ctx)
        self.next_capture_index = 0

    def seconds(self, buffers: Sequence[np.ndarray]) -> float:
        def send_all() -> None:
            for b in buffers:
                self.pub.send(b, self.next_capture_index, self.next_capture_index / self.pub.capture_rate_hz)
                self.next_capture_index += b.shape[1]

        def recv_one() -> None:
            if self.sub.recv(timeout_s=30.0) is None:
                raise TimeoutError(f"pipeline benchmark: message lost (drops {dict(self.sub.drops)})")

        return _timed_transfer(send_all, recv_one, len(buffers))

    def close(self) -> None:
        self.pub.close(linger_s=0)
        self.sub.close()


def _median_seconds(
    links: Sequence[_BareLink | _PipelineLink], buffers: Sequence[np.ndarray], repeats: int
) -> list[float]:
    """Median seconds per link over ``repeats`` passes, links interleaved, after one warm-up each."""
    times: list[list[float]] = [[] for _ in links]
    for r in range(repeats + 1):
        for i, link in enumerate(links):
            t = link.seconds(buffers)
            if r:
                times[i].append(t)
    return [statistics.median(t) for t in times]


def bare_pushpull_throughput(buffers: Sequence[np.ndarray], repeats: int = 5) -> float:
    """Bytes/s of ``buffers`` sent as single zero-copy frames PUSH -> PULL over tcp loopback.

    ``buffers``: complex64 ``[channel, sample]`` or sc16 int16 ``[channel, sample, 2]`` arrays
    (at most 3 channels).  The median of ``repeats`` passes, after a warm-up pass.
    """
    total = _check_buffers(buffers)
    with zmq.Context() as ctx:
        link = _BareLink(ctx)
        try:
            (t,) = _median_seconds([link], buffers, repeats)
        finally:
            link.close()
    return total / t


def pipeline_pushpull_throughput(buffers: Sequence[np.ndarray], repeats: int = 5) -> float:
    """Bytes/s of ``buffers`` through ``IQPublisher`` (encode, PUSH) and ``IQSubscriber`` (PULL,
    validate, decode) over tcp loopback.

    complex64 buffers travel as fc32 and int16 ones as sc16, so the payload bytes equal
    :func:`bare_pushpull_throughput`'s.  The median of ``repeats`` passes after a warm-up.
    """
    total = _check_buffers(buffers)
    with zmq.Context() as ctx:
        link = _PipelineLink(ctx, buffers)
        try:
            (t,) = _median_seconds([link], buffers, repeats)
        finally:
            link.close()
    return total / t


def compare_pushpull_throughput(buffers: Sequence[np.ndarray], repeats: int = 5) -> dict[str, float]:
    """Bare ZeroMQ against the full pipeline path on the same buffers, passes interleaved.

    Returns ``bare_bytes_per_s``, ``pipeline_bytes_per_s`` and ``ratio`` (pipeline / bare; 1.0
    means the framing and validation cost nothing measurable).
    """
    total = _check_buffers(buffers)
    with zmq.Context() as ctx:
        links: list[_BareLink | _PipelineLink] = []
        try:
            links.append(_BareLink(ctx))
            links.append(_PipelineLink(ctx, buffers))
            t_bare, t_pipe = _median_seconds(links, buffers, repeats)
        finally:
            for link in links:
                link.close()
    return {
        "bare_bytes_per_s": total / t_bare,
        "pipeline_bytes_per_s": total / t_pipe,
        "ratio": t_bare / t_pipe,
    }
