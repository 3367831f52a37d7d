#!/usr/bin/env python3
"""Play one raw IQ file per band into GNU Radio ZMQ sinks (run with the system python3 of GNU Radio).

    /usr/bin/python3 gnuradio/play_bands.py --sink push --tags --rx-time-s 0 --rate-hz 30.72e6 \\
        --band central central.c64 tcp://127.0.0.1:5601 915e6 \\
        --band lower lower.c64 tcp://127.0.0.1:5602 870e6 --band upper upper.c64 tcp://127.0.0.1:5603 960e6

Flowgraph per band: ``blocks.file_source`` (complex64 items, or int16 I/Q pairs with
``--format sc16``; ``--repeat`` loops them) -> [``--throttle``: a ``blocks.throttle`` at
``--rate-hz`` per band; with ``--lockstep`` one for all bands, through ``streams_to_vector``
and ``vector_to_streams``, so the bands stay in lockstep like the outputs of one radio
source] -> [``--rx-time-s``: a Python block adding ``rx_time``, ``rx_rate`` and ``rx_freq``
tags on the first item, and ``rx_time`` after each ``--gap``, as a UHD source does] ->
``zeromq.push_sink`` or ``zeromq.pub_sink`` (``pass_tags`` with ``--tags``).  The sinks bind
when the flowgraph is built; it starts ``--start-delay-s`` later, so subscribers can connect
first.
"""

import argparse
import math
import sys
import time

import numpy as np
import pmt
from gnuradio import blocks, gr, zeromq


class RxTimeTagger(gr.sync_block):
    """Copies items (complex64, or int16 pairs), tagging the first with rx_time / rx_rate / rx_freq."""

    def __init__(self, time_s, rate_hz, freq_hz, sc16, gaps=()):
        sig = [(np.int16, 2)] if sc16 else [np.complex64]
        gr.sync_block.__init__(self, "rx_time_tagger", sig, sig)
        self.tags = [
            (0, "rx_time", rx_time(time_s)),
            (0, "rx_rate", pmt.from_double(rate_hz)),
            (0, "rx_freq", pmt.from_double(freq_hz)),
        ]
        lost = 0
        for offset, n_lost in sorted(gaps):  # after an overflow a UHD source re-tags rx_time
            lost += n_lost
            self.tags.append((offset, "rx_time", rx_time(time_s + (offset + lost) / rate_hz)))

    def work(self, input_items, output_items):
        n = len(output_items[0])
        output_items[0][:] = input_items[0][:n]
        first = self.nitems_written(0)
        for offset, key, value in self.tags:
            if first <= offset < first + n:
                self.add_item_tag(0, offset, pmt.intern(key), value, pmt.intern("play_bands"))
        return n


def rx_time(time_s):
    whole = math.floor(time_s)
    return pmt.make_tuple(pmt.from_uint64(whole), pmt.from_double(time_s - whole))


def build(args):
    tb = gr.top_block("play_bands")
    item, vlen = (gr.sizeof_gr_complex, 1) if args.format == "fc32" else (gr.sizeof_short, 2)
    make_sink = zeromq.push_sink if args.sink == "push" else zeromq.pub_sink
    size = item * vlen
    keep = [blocks.file_source(size, path, args.repeat) for _, path, _, _ in args.band]
    outs = [(src, 0) for src in keep]
    if args.throttle and not args.lockstep:  # one throttle per band: cheap, the bands drift apart
        throttles = [blocks.throttle(size, args.rate_hz, True) for _ in keep]
        for src, thr in zip(keep, throttles, strict=True):
            tb.connect(src, thr)
        outs = [(thr, 0) for thr in throttles]
        keep += throttles
    elif args.throttle:  # one throttle for all bands: lockstep, as the outputs of one radio source
        n = len(keep)
        s2v, v2s = blocks.streams_to_vector(size, n), blocks.vector_to_streams(size, n)
        throttle = blocks.throttle(size * n, args.rate_hz, True)
        for i, src in enumerate(keep):
            tb.connect(src, (s2v, i))
        tb.connect(s2v, throttle, v2s)
        outs = [(v2s, i) for i in range(n)]
        keep += [s2v, throttle, v2s]
    for (name, path, endpoint, freq), out in zip(args.band, outs, strict=True):
        if args.rx_time_s is not None:
            gaps = [(int(o), int(k)) for o, k in args.gap or []]
            tagger = RxTimeTagger(args.rx_time_s, args.rate_hz, float(freq), args.format == "sc16", gaps)
            tb.connect(out, tagger)
            out = (tagger, 0)
            keep.append(tagger)
        if args.min_output_buffer:  # larger buffers: larger messages, fewer per second
            out[0].set_min_output_buffer(args.min_output_buffer)
        sink = make_sink(item, vlen, endpoint, 100, args.tags, args.hwm)
        tb.connect(out, sink)
        keep.append(sink)
        print(f"play_bands: {name} {path} -> {args.sink} {endpoint}", file=sys.stderr, flush=True)
    tb.keep = keep
    return tb


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--band", nargs=4, action="append", required=True, metavar=("NAME", "FILE", "ENDPOINT", "RF_HZ")
    )
    p.add_argument("--sink", choices=["push", "pub"], default="push")
    p.add_argument("--format", choices=["fc32", "sc16"], default="fc32")
    p.add_argument("--tags", action="store_true", help="pass_tags=True on the sinks")
    p.add_argument("--rx-time-s", type=float, help="tag the first item with this rx_time")
    p.add_argument(
        "--gap",
        nargs=2,
        action="append",
        metavar=("OFFSET", "LOST"),
        help="with --rx-time-s: LOST samples were lost before item OFFSET (rx_time re-tagged there)",
    )
    p.add_argument("--rate-hz", type=float, default=30.72e6)
    p.add_argument("--hwm", type=int, default=-1)
    p.add_argument("--min-output-buffer", type=int, help="items buffered before each sink (message size)")
    p.add_argument("--repeat", action="store_true", help="loop the files (end with --duration-s)")
    p.add_argument("--throttle", action="store_true", help="pace each band at --rate-hz (real time)")
    p.add_argument("--lockstep", action="store_true", help="with --throttle: one throttle for all bands")
    p.add_argument("--duration-s", type=float, help="stop after this long")
    p.add_argument("--start-delay-s", type=float, default=1.0)
    p.add_argument("--linger-s", type=float, default=5.0, help="keep the sockets open this long at the end")
    args = p.parse_args()
    tb = build(args)
    time.sleep(args.start_delay_s)
    t0 = time.monotonic()
    if args.duration_s is None:
        tb.run()
    else:
        tb.start()
        time.sleep(args.duration_s)
        tb.stop()
        tb.wait()
    print(f"play_bands: done in {time.monotonic() - t0:.2f} s", file=sys.stderr, flush=True)
    time.sleep(args.linger_s)  # the sinks' last messages reach slow readers before the sockets close


if __name__ == "__main__":
    main()
