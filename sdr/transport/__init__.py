"""Framing, validation and ZeroMQ sockets of the live pipeline (wire format: ``sdr/MESSAGES.md``).

Modules: :mod:`~sdr.transport.wire` (limits, topics, message types, sample formats),
:mod:`~sdr.transport.schema` (result fields), :mod:`~sdr.transport.codec` (encode, validate,
decode), :mod:`~sdr.transport.publishers`, :mod:`~sdr.transport.subscribers` and
:mod:`~sdr.transport.bench` (throughput helpers).  Everything public is re-exported here:
import from ``sdr.transport``.  GNU Radio's ZMQ format (one socket per band, raw items and
gr-zeromq tag headers) is read and written by :mod:`~sdr.transport.gnuradio`, with
:mod:`~sdr.transport.gr_align` and :mod:`~sdr.transport.gr_tags` (import them from there).

Producers
    :class:`IQPublisher` sends IQ chunks on PUB (really XPUB, so the streamer can wait for a
    subscriber; a slow subscriber loses whole messages) or PUSH (lossless to one consumer: the
    sender blocks when the consumer falls behind).  :class:`ResultPublisher` sends receiver
    results on PUB.  Payloads go out zero-copy (``send_multipart(copy=False)``): a sent array
    must not be modified afterwards.

Consumers
    :class:`IQSubscriber` and :class:`ResultSubscriber` never raise on a bad message: every
    rejected message is counted in ``drops`` under one of :data:`DROP_REASONS` and skipped.
    They track ``seq`` per ``stream_id``, report lost messages and (IQ) the samples lost with
    them, and treat a new ``stream_id`` (streamer restart) as a new stream.

Codec
    :func:`encode_iq` / :func:`encode_result` build frames; :func:`decode` validates every
    field and raises :class:`MessageError` (``reason``, ``detail``).  Sizes are checked against
    :data:`MAX_HEADER_BYTES`, :data:`MAX_CHANNELS`, :data:`MAX_SAMPLES` and
    :data:`MAX_ARRAY_ELEMENTS` before any array is built, and arrays are only ever views
    (``numpy.frombuffer``) of the received frames.

Queue limits (high-water marks, in messages, per socket and per peer)
    * IQ: :data:`IQ_HWM` = 32 on both sides.  At the default chunk of 2**18 samples (three
      bands, sc16: 3 MiB a message) that is 96 MiB and about 0.27 s of 30.72 MS/s per side:
      enough to ride out a GC pause or a slow disk flush, small enough that a PUB streamer
      drops (and the consumer sees a sequence gap) instead of growing without bound.
    * Results: :data:`RESULT_HWM` = 200.  Results are small (an epoch with three 4096-bin CIRs
      is about 100 kB) and arrive at tens per second, so 200 is seconds of slack for a GUI.
    * ``LINGER`` = :data:`LINGER_MS` (200 ms): closing never hangs on a dead peer.  A streamer
      that finishes normally closes with a longer, explicit drain time instead
      (``IQPublisher.close(linger_s=...)``); subscribers close with 0.
    * Receivers set ``MAXMSGSIZE`` to the largest legal IQ payload, so a peer cannot make
      ZeroMQ buffer an arbitrarily large frame.

Use::

    with IQSubscriber("tcp://127.0.0.1:5555") as sub:          # mode="pull" for a PUSH streamer
        while (msg := sub.recv(timeout_s=1.0)) is not None:
            msg.header.capture_rate_hz, msg.header.bands, msg.header.waveform
            iq = msg.complex64()                                # [channel, sample]
            receiver.push(iq, msg.lost_before)

    with ResultPublisher("tcp://127.0.0.1:5556") as pub:
        pub.send(*results_wire.result_to_wire(result, wf))
"""

from __future__ import annotations

from sdr.transport.bench import (
    bare_pushpull_throughput,
    compare_pushpull_throughput,
    pipeline_pushpull_throughput,
)
from sdr.transport.codec import (
    decode,
    encode_iq,
    encode_result,
)
from sdr.transport.publishers import (
    IQPublisher,
    ResultPublisher,
)
from sdr.transport.subscribers import (
    IQSubscriber,
    ResultSubscriber,
)
from sdr.transport.wire import (
    BAND_NAMES,
    DROP_REASONS,
    IQ_FORMATS,
    IQ_HWM,
    IQ_SOURCES,
    IQ_TOPIC,
    LINGER_MS,
    MAX_ARRAY_ELEMENTS,
    MAX_CHANNELS,
    MAX_CIR_FFT_SIZE,
    MAX_HEADER_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_SAMPLES,
    MAX_TOPIC_BYTES,
    PROTOCOL_VERSION,
    RESULT_DTYPES,
    RESULT_HWM,
    RESULT_KINDS,
    SC16_FULL_SCALE,
    TOPICS,
    BufferPool,
    Channel,
    IQHeader,
    IQMessage,
    MessageError,
    ResultMessage,
    as_wire_array,
    complex_to_sc16,
    new_stream_id,
    sc16_to_complex,
)

__all__ = [
    "BAND_NAMES",
    "DROP_REASONS",
    "IQ_FORMATS",
    "IQ_HWM",
    "IQ_SOURCES",
    "IQ_TOPIC",
    "LINGER_MS",
    "MAX_ARRAY_ELEMENTS",
    "MAX_CHANNELS",
    "MAX_CIR_FFT_SIZE",
    "MAX_HEADER_BYTES",
    "MAX_PAYLOAD_BYTES",
    "MAX_SAMPLES",
    "MAX_TOPIC_BYTES",
    "PROTOCOL_VERSION",
    "RESULT_DTYPES",
    "RESULT_HWM",
    "RESULT_KINDS",
    "SC16_FULL_SCALE",
    "TOPICS",
    "BufferPool",
    "Channel",
    "IQHeader",
    "IQMessage",
    "IQPublisher",
    "IQSubscriber",
    "MessageError",
    "ResultMessage",
    "ResultPublisher",
    "ResultSubscriber",
    "as_wire_array",
    "bare_pushpull_throughput",
    "compare_pushpull_throughput",
    "complex_to_sc16",
    "decode",
    "encode_iq",
    "encode_result",
    "new_stream_id",
    "pipeline_pushpull_throughput",
    "sc16_to_complex",
]
