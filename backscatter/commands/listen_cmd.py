"""``listen``: print the results a worker publishes (``sdr/MESSAGES.md``), one line each."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import zmq

from app.stream import StopOnSignal
from backscatter.commands.keys_cmd import add_keys_arg, client_keys_from_args
from backscatter.output import CliError
from sdr.security import SecurityError
from sdr.transport import RESULT_KINDS, ResultMessage, ResultSubscriber


def result_to_json(msg: ResultMessage) -> dict[str, Any]:
    """A result as one JSON-ready object; arrays are summarised by dtype and shape."""
    out: dict[str, Any] = {"kind": msg.kind, "stream_id": msg.stream_id, "seq": msg.seq}
    out.update(msg.fields)
    out["arrays"] = {n: {"dtype": a.dtype.name, "shape": list(a.shape)} for n, a in msg.arrays.items()}
    if msg.messages_missed:
        out["messages_missed"] = msg.messages_missed
    return out


def _fmt_bands(d: dict, unit: str, fmt: str = ".1f") -> str:
    return ", ".join(
        f"{b} {v:{fmt}} {unit}" if isinstance(v, (int, float)) else f"{b} -" for b, v in d.items()
    )


def result_line(msg: ResultMessage) -> str:
    """A short human-readable line for one result."""
    f, k = msg.fields, msg.kind
    head = f"{msg.time_s:10.4f} s  {k:11s}"
    if k == "packet":
        crc = "CRC ok" if f["crc_ok"] else "CRC bad"
        errs = "" if f["bit_errors"] is None else f", {f['bit_errors']} bit errors"
        return f"{head} tag {f['tag_id']:#x} {crc}, Eb/N0 {f['ebn0_db']:.1f} dB{errs}"
    if k == "epoch":
        rng = ", ".join(
            f"{m} {v:.3f} m" if isinstance(v, (int, float)) else f"{m} -" for m, v in f["range_m"].items()
        )
        true = f" (true {f['range_true_m']:.3f} m)" if f["range_true_m"] is not None else ""
        return f"{head} range {rng}{true}; SNR {_fmt_bands(f['snr_db'], 'dB')}"
    if k == "stats":
        acq = ", ".join(b for b, a in f["acquired"].items() if a) or "none"
        return f"{head} {f['symbols']} symbols, timing {f['timing_offset']}, acquired {acq}"
    if k == "gap":
        return f"{head} {f['samples_lost']} samples lost before sample {f['index']}"
    if k == "health":
        return (
            f"{head} {f['stream_state']}, {f['throughput_sps'] / 1e6:.2f} MS/s "
            f"({f['realtime_factor']:.2f}x real time), queue {f['queue_depth']}, "
            f"{f['samples_lost']} samples lost in {f['gaps']} gaps"
        )
    if k == "spectrum":
        return f"{head} bands {', '.join(f['bands'])}, " + ", ".join(
            f"{n} {list(a.shape)}" for n, a in msg.arrays.items()
        )
    return f"{head} {f['state']} {100 * f['progress']:.0f}% ({f['symbols']} symbols) {f['message']}"


def cmd_listen(args: argparse.Namespace) -> dict:
    kinds = tuple(args.kind) if args.kind else RESULT_KINDS
    n = 0
    with StopOnSignal() as signals:
        stop = signals.event
        try:
            sub = ResultSubscriber(args.connect, kinds=kinds, client_keys=client_keys_from_args(args))
        except SecurityError as exc:
            raise CliError(str(exc)) from None
        except zmq.ZMQError as exc:  # malformed endpoint
            raise CliError(f"cannot connect {args.connect}: {exc}") from None
        try:
            deadline = None if args.timeout_s is None else time.monotonic() + args.timeout_s
            while not stop.is_set() and (args.count is None or n < args.count):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                msg = sub.recv(timeout_s=0.1)
                if msg is None:
                    continue
                n += 1
                line = json.dumps(result_to_json(msg), allow_nan=True) if args.json else result_line(msg)
                print(line, flush=True)
        finally:
            sub.close()
    # with --kind, the publisher's sequence numbers also count the kinds filtered out
    missed = None if args.kind else sub.counters.messages_missed
    summary = {"results": n, "messages_missed": missed, "drops": dict(sub.drops)}
    missed_text = "" if missed is None else f", {missed} missed"
    print(f"listen: {n} results{missed_text}, drops {summary['drops'] or 'none'}", file=sys.stderr)
    return summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("listen", help="print the results a worker publishes")
    p.add_argument("--connect", required=True, help="results endpoint of the worker")
    p.add_argument("--kind", action="append", choices=RESULT_KINDS, help="only these kinds (repeatable)")
    p.add_argument("--count", type=int, help="stop after this many results")
    p.add_argument("--timeout-s", type=float, help="stop after this many seconds")
    add_keys_arg(p, server=False)
    p.add_argument("--json", action="store_true", help="one JSON object per line (arrays by shape)")
    p.set_defaults(func=cmd_listen)
