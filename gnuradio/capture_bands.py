#!/usr/bin/env python3
"""Write what GNU Radio ZMQ sources receive, one raw file per band (run with GNU Radio's python3).

    /usr/bin/python3 gnuradio/capture_bands.py --source pull --tags --items 1000000 \\
        --band central tcp://127.0.0.1:5611 central.c64 --band upper tcp://127.0.0.1:5613 upper.c64

Flowgraph per band: ``zeromq.pull_source`` or ``zeromq.sub_source`` (complex64 items, or int16
I/Q pairs with ``--format sc16``; ``pass_tags`` with ``--tags``) -> ``blocks.head`` (``--items``)
-> ``blocks.file_sink``, and the tags of the items kept to ``--tags-json`` (key, offset, value).
Ends when every band has its items, or after ``--timeout-s`` (exit status 3).
"""

import argparse
import json
import sys
import time

import numpy as np
import pmt
from gnuradio import blocks, gr, zeromq


class TagRecorder(gr.sync_block):
    """Consumes items, keeping every tag (key, offset, value as text)."""

    def __init__(self, sc16):
        gr.sync_block.__init__(self, "tag_recorder", [(np.int16, 2)] if sc16 else [np.complex64], [])
        self.tags = []

    def work(self, input_items, output_items):
        n = len(input_items[0])
        for t in self.get_tags_in_window(0, 0, n):
            self.tags.append(
                {"offset": t.offset, "key": pmt.symbol_to_string(t.key), "value": pmt.write_string(t.value)}
            )
        return n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--band", nargs=3, action="append", required=True, metavar=("NAME", "ENDPOINT", "FILE"))
    p.add_argument("--source", choices=["pull", "sub"], default="pull")
    p.add_argument("--format", choices=["fc32", "sc16"], default="fc32")
    p.add_argument("--tags", action="store_true", help="pass_tags=True on the sources")
    p.add_argument("--items", type=int, required=True, help="items to write per band")
    p.add_argument("--tags-json", help="write the tags seen per band to this JSON file")
    p.add_argument("--timeout-s", type=float, default=120.0)
    args = p.parse_args()
    tb = gr.top_block("capture_bands")
    item, vlen = (gr.sizeof_gr_complex, 1) if args.format == "fc32" else (gr.sizeof_short, 2)
    make_source = zeromq.pull_source if args.source == "pull" else zeromq.sub_source
    debug, sinks = {}, []
    for name, endpoint, path in args.band:
        src = make_source(item, vlen, endpoint, 100, args.tags, -1)
        head = blocks.head(item * vlen, args.items)
        sink = blocks.file_sink(item * vlen, path, False)
        sink.set_unbuffered(False)
        dbg = TagRecorder(args.format == "sc16")
        tb.connect(src, head, sink)
        tb.connect(head, dbg)
        debug[name] = dbg
        sinks.append(sink)
    tb.start()
    print("capture_bands: started", file=sys.stderr, flush=True)
    # a ZMQ source whose readers are done can idle on: wait for the items, then stop
    deadline = time.monotonic() + args.timeout_s
    readers = [*sinks, *debug.values()]
    while any(r.nitems_read(0) < args.items for r in readers):
        if time.monotonic() > deadline:
            print("capture_bands: timed out", file=sys.stderr, flush=True)
            tb.stop()
            sys.exit(3)
        time.sleep(0.05)
    tb.stop()
    tb.wait()
    if args.tags_json:
        out = {name: dbg.tags for name, dbg in debug.items()}
        with open(args.tags_json, "w") as f:
            json.dump(out, f)
    print("capture_bands: done", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
