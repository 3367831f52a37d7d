"""``stream``, ``record``, ``listen`` and ``keys``: the live pipeline (``sdr/MESSAGES.md``).

``stream`` sends IQ from the emulator, a capture or a radio; ``record`` writes a stream to a
capture file that can be read while it grows; ``listen`` prints the results a worker publishes;
``keys`` creates CURVE keys.  Every command stops cleanly on SIGINT/SIGTERM.

The socket pattern is ``--socket pub|push`` on ``stream`` and ``--socket sub|pull`` on
``record``: ``--mode`` is the tag mode (cw/burst) of the shared scenario flags.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import zmq

from backscatter.commands.captures_cmd import add_scenario_args, scenario_from_args
from backscatter.output import CliError, print_json, progress_bar
from dsp.waveform import get_profile
from sdr.loop_source import LoopSource
from sdr.recorder import Recorder, RecordingStopped, record
from sdr.security import ClientKeys, SecurityError, ServerKeys, check_connect, create_keys
from sdr.sources import DEFAULT_CHUNK_SAMPLES, EmulatorSource, IQSource, Pacer, ReplaySource, chunk_iq
from sdr.stream_truth import stream_truth_of
from sdr.transport import (
    IQ_FORMATS,
    MAX_SAMPLES,
    RESULT_KINDS,
    IQPublisher,
    IQSubscriber,
    ResultMessage,
    ResultSubscriber,
    as_wire_array,
)

DEFAULT_IQ_ENDPOINT = "tcp://127.0.0.1:5555"
DRAIN_S = 10.0  # a stream that ends normally waits at most this long for its queue to drain


class StopOnSignal:
    """While active, SIGINT and SIGTERM set ``event`` (and run the ``on_stop`` callbacks, which
    must only set flags) instead of killing the process.

    A second signal raises ``KeyboardInterrupt`` (for a loop that does not look at the event).
    Outside the main thread it installs nothing and only provides the event.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.on_stop: list[Callable[[], None]] = []
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        for fn in self.on_stop:
            fn()

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# ----- stream -----------------------------------------------------------------------------------
def _uhd_source(args: argparse.Namespace) -> IQSource:
    try:
        mod = importlib.import_module("sdr.uhd_source")
    except ImportError as exc:
        raise CliError(
            f"--source uhd needs sdr/uhd_source.py and the UHD Python bindings, which did not import: {exc}"
        ) from None
    make = getattr(mod, "make_uhd_source", None)
    if make is None:
        raise CliError("sdr/uhd_source.py defines no make_uhd_source(args); cannot open the radio")
    return make(args)


def make_source(args: argparse.Namespace, stop: threading.Event | None = None) -> IQSource:
    """The source ``--source`` names, built from the command's arguments.

    ``stop``: set by a signal; a loop being generated (``--loop-s``) then stops with
    ``KeyboardInterrupt`` instead of finishing seconds of emulation first.
    """
    if args.source == "replay":
        if args.file is None:
            raise CliError("--source replay needs --file CAPTURE.h5")
        return ReplaySource(args.file, chunk_samples=args.chunk_samples)
    if args.file is not None:
        raise CliError(f"--file is only for --source replay, not {args.source}")
    if args.source == "uhd":
        return _uhd_source(args)
    if getattr(args, "loop_s", None) is not None:  # --duration-s is then the stream length
        sc = scenario_from_args(argparse.Namespace(**{**vars(args), "duration_s": args.loop_s}))

        def interrupt_generation(_: int) -> None:
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt

        try:
            return LoopSource(
                sc,
                get_profile(args.profile),
                loop_s=args.loop_s,
                duration_s=args.duration_s,
                chunk_samples=args.chunk_samples,
                progress=interrupt_generation,
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
    sc = scenario_from_args(args, duration_s=1.0)
    return EmulatorSource(sc, get_profile(args.profile), chunk_samples=args.chunk_samples)


def _gnuradio_args() -> Any:
    """``backscatter.commands.gnuradio_args``, imported when used (it imports this module)."""
    return importlib.import_module("backscatter.commands.gnuradio_args")


BEHIND_WARNING_S = 1.0
"""A paced source this far behind the sample clock gets one warning."""


def run_stream(
    source: IQSource,
    publisher: IQPublisher,
    *,
    pacer: Pacer,
    stop: threading.Event,
    recorder: Recorder | None = None,
    progress: Any = None,
    also: Any = None,
) -> dict[str, Any]:
    """Send every chunk of ``source`` through ``publisher`` (and into ``recorder``) until done or ``stop``.

    A recording that cannot go on (:class:`~sdr.recorder.RecordingStopped`: disk full, write
    error) stops, is warned about on stderr and named in ``record_error``; the stream goes on.
    """
    messages = samples = lost = 0
    record_error = None
    behind_warned = False
    t0 = time.perf_counter()
    stopped = False
    for chunk in source:
        payload = as_wire_array(chunk_iq(chunk), publisher.fmt)
        n = payload.shape[1]
        if stop.is_set() or not pacer.wait(chunk.first_sample, n, stop):
            stopped = True
            break
        if pacer.realtime and pacer.lag_s > BEHIND_WARNING_S and not behind_warned:
            behind_warned = True
            fresh_emulation = source.name == "emulator" and not isinstance(source, LoopSource)
            hint = "; --loop-s streams a pre-generated loop in real time" if fresh_emulation else ""
            print(
                f"backscatter stream: warning: the {source.name} source is {pacer.lag_s:.1f} s behind the "
                f"sample clock: it produces samples slower than real time{hint}",
                file=sys.stderr,
                flush=True,
            )
        header = publisher.send(payload, chunk.first_sample, chunk.time_s, chunk.lost_before, stop=stop)
        if also is not None and header is not None:  # GNU Radio sockets (--gnuradio-bind)
            if not also.send(payload, chunk.first_sample, chunk.time_s, chunk.lost_before, stop=stop):
                header = None
        if header is None:
            stopped = True
            break
        if recorder is not None and record_error is None:
            try:
                recorder.append(header, payload, chunk.lost_before)
            except RecordingStopped as exc:
                record_error = {"reason": exc.reason, "message": str(exc)}
                print(f"backscatter stream: warning: recording stopped: {exc}", file=sys.stderr, flush=True)
        messages += 1
        samples += n
        lost += chunk.lost_before
        if progress is not None:
            progress(n + chunk.lost_before)
    wall_s = time.perf_counter() - t0
    stopped = stopped or stop.is_set()  # a source told to stop ends its iteration early
    stream_s = (samples + lost) / publisher.sample_rate_hz
    return {
        "source": source.name,
        "endpoint": publisher.endpoint,
        "mode": publisher.mode,
        "format": publisher.fmt,
        "stream_id": publisher.stream_id,
        "sample_rate_hz": publisher.sample_rate_hz,
        "bands": [b for b, _ in source.channels],
        "messages": messages,
        "samples_sent": samples,
        "samples_lost": lost,
        "bytes_sent": publisher.bytes_sent,
        "stream_s": stream_s,
        "wall_s": wall_s,
        "realtime_factor": stream_s / wall_s if wall_s > 0 else float("inf"),
        "max_lag_s": pacer.lag_s,
        "paced": pacer.realtime,
        "interrupted": stopped,
        "record": None if recorder is None else str(recorder.path),
        "record_error": record_error,
    }


def server_keys_from_args(args: argparse.Namespace) -> ServerKeys | None:
    """``--keys DIR`` of a binding command (see :func:`add_keys_arg`)."""
    return None if args.keys is None else ServerKeys.from_dir(args.keys)


def client_keys_from_args(args: argparse.Namespace) -> ClientKeys | None:
    """``--keys DIR`` of a connecting command (see :func:`add_keys_arg`), after the connect
    policy (``sdr.security.check_connect``) has passed ``--connect``."""
    check_connect(args.connect, curve=args.keys is not None, insecure=args.insecure)
    return None if args.keys is None else ClientKeys.from_dir(args.keys)


def cmd_stream(args: argparse.Namespace) -> dict:
    if not (1 <= args.chunk_samples <= MAX_SAMPLES):
        raise CliError(f"--chunk-samples must be in [1, {MAX_SAMPLES}], got {args.chunk_samples}")
    if args.record is not None and args.record.exists() and not args.force:
        raise CliError(f"{args.record} exists; refusing to overwrite without --force")
    with StopOnSignal() as signals:
        stop = signals.event
        source = make_source(args, stop)
        signals.on_stop.append(source.stop)
        try:
            try:
                pub = IQPublisher(
                    args.bind,
                    sample_rate_hz=source.sample_rate_hz,
                    channels=source.channels,
                    waveform=source.waveform,
                    source=source.name,
                    mode=args.socket,
                    fmt=args.format,
                    server_keys=server_keys_from_args(args),
                    insecure=args.insecure,
                    truth=stream_truth_of(source),  # emulator / replay: the answer travels along
                )
            except SecurityError as exc:
                raise CliError(str(exc)) from None
            except zmq.ZMQError as exc:  # address in use, malformed endpoint
                raise CliError(f"cannot bind {args.bind}: {exc}") from None
            completed = False
            gr_pub = None
            try:
                gr_pub = _gnuradio_args().gnuradio_publisher_from_args(
                    args, source.sample_rate_hz, source.channels
                )
                subscriber_seen = None
                if args.wait_subscriber_s > 0 and gr_pub is not None:  # a GNU Radio watcher, then
                    subscriber_seen = gr_pub.wait_for_subscribers(args.wait_subscriber_s, stop)
                elif args.wait_subscriber_s > 0:
                    subscriber_seen = pub.wait_for_subscriber(args.wait_subscriber_s, stop)
                live = bool(getattr(source, "is_live", source.name == "uhd"))
                pacer = Pacer(source.sample_rate_hz, realtime=not (live or args.as_fast_as_possible))
                rec = None
                if args.record is not None:
                    rec = Recorder(
                        args.record, overwrite=args.force, origin=pub.endpoint, recorder="backscatter stream"
                    )
                total = getattr(source, "total_samples", None)
                try:
                    with progress_bar(total or 0, "stream", enabled=bool(total) and not args.json) as bar:
                        summary = run_stream(
                            source,
                            pub,
                            pacer=pacer,
                            stop=stop,
                            recorder=rec,
                            progress=bar.update,
                            also=gr_pub,
                        )
                except RuntimeError as exc:  # the radio's set-up and stream errors
                    if source.name != "uhd":
                        raise
                    raise CliError(f"--source uhd: {exc}") from None
                finally:
                    if rec is not None:
                        rec.close()
                summary["subscriber_seen"] = subscriber_seen
                summary["gnuradio"] = gr_pub and {
                    "endpoints": gr_pub.endpoints,
                    "items_sent": gr_pub.items_sent,
                }
                if isinstance(source, LoopSource):
                    summary["loop"] = {
                        "loop_s": source.loop_s,
                        "loop_bytes": source.bytes_per_loop,
                        "packets_per_loop": source.truth_packets_per_loop,
                        "generate_s": source.generate_s,
                    }
                completed = not summary["interrupted"]
            finally:
                # a stream that ended normally lets its queue drain to the consumers
                pub.close(linger_s=DRAIN_S if completed else 0.2)
                if gr_pub is not None:
                    gr_pub.close(linger_s=DRAIN_S if completed else 0.2)
        finally:
            source.close()
    if args.json:
        print_json(summary)
    else:
        end = "interrupted" if summary["interrupted"] else "done"
        print(
            f"stream {end}: {summary['stream_s']:.3f} s of {len(summary['bands'])} bands from "
            f"{summary['source']} ({summary['samples_sent']} samples, {summary['messages']} messages, "
            f"{summary['bytes_sent'] / 1e6:.1f} MB) in {summary['wall_s']:.2f} s "
            f"({summary['realtime_factor']:.2f}x real time) to {summary['endpoint']} ({summary['mode']})"
        )
        if summary["samples_lost"]:
            print(f"  {summary['samples_lost']} samples lost at the source")
        if summary["record"]:
            print(f"  recorded to {summary['record']}")
    if summary["record_error"] is not None:
        if rec is not None and rec.broken:
            _exit_leaving_broken_file("stream", summary["record_error"]["message"])
        raise CliError(f"the stream completed, the recording did not: {summary['record_error']['message']}")
    return summary


# ----- record -----------------------------------------------------------------------------------
def cmd_record(args: argparse.Namespace) -> dict:
    if args.out.exists() and not args.force:
        raise CliError(f"{args.out} exists; refusing to overwrite without --force")
    with StopOnSignal() as signals:
        stop = signals.event
        sub = _gnuradio_args().gnuradio_subscriber_from_args(args)
        if sub is None and not args.connect:
            raise CliError("give --connect ENDPOINT (our stream) or --gnuradio BAND=ENDPOINT per band")
        try:
            sub = sub or IQSubscriber(args.connect, mode=args.socket, client_keys=client_keys_from_args(args))
        except SecurityError as exc:
            raise CliError(str(exc)) from None
        except zmq.ZMQError as exc:  # malformed endpoint
            raise CliError(f"cannot connect {args.connect}: {exc}") from None
        try:
            summary = record(
                sub,
                args.out,
                overwrite=args.force,
                stop=stop,
                idle_timeout_s=args.idle_timeout_s,
                max_messages=args.count,
            )
        finally:
            sub.close()
    if summary["broken"]:  # HDF5 may crash closing a file whose write failed: say why, then leave
        _exit_leaving_broken_file("record", summary["message"])
    if args.json:
        print_json(summary)
    else:
        where = summary["file"] or f"nothing ({args.out} not written)"
        print(
            f"record ({summary['stop_reason']}): {summary['messages']} messages, "
            f"{summary['samples']} samples to {where}; {summary['gaps']} gaps "
            f"({summary['samples_lost']} samples lost, "
            f"{summary['messages_missed']} messages missed), drops {summary['drops'] or 'none'}"
        )
    if summary["stop_reason"] in ("stream_changed", "disk_full", "write_error"):
        raise CliError(summary["message"])
    return summary


def _exit_leaving_broken_file(command: str, message: str) -> None:
    """Report a failed write and end the process without HDF5's exit-time close of the file."""
    sys.stdout.flush()
    print(f"backscatter {command}: error: {message}", file=sys.stderr, flush=True)
    os._exit(2)


# ----- listen -----------------------------------------------------------------------------------
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


# ----- keys -------------------------------------------------------------------------------------
def cmd_keys(args: argparse.Namespace) -> dict:
    try:
        paths = create_keys(args.out, tuple(args.client or ["client"]), force=args.force)
    except SecurityError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json(paths)
    else:
        print(f"wrote CURVE keys to {args.out}:")
        for role, path in paths.items():
            print(f"  {role:22s} {path}")
        print("  servers (stream, worker) use --keys DIR; give clients server.key and their own key pair")
    return paths


# ----- parser -----------------------------------------------------------------------------------
def add_keys_arg(p: argparse.ArgumentParser, server: bool) -> None:
    """``--keys DIR`` or ``--insecure``, as in ``sdr/security.py`` (bind and connect policies)."""
    g = p.add_mutually_exclusive_group()
    if server:
        g.add_argument(
            "--keys",
            type=Path,
            help="CURVE key directory (server.key_secret, authorized_clients/); see `keys`",
        )
    else:
        g.add_argument("--keys", type=Path, help="CURVE key directory (client.key_secret, server.key)")
    g.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback endpoint without authentication or encryption",
    )


def _add_uhd_args(p: argparse.ArgumentParser) -> None:
    """Flags read by ``sdr.uhd_source.make_uhd_source`` (``--source uhd``)."""
    g = p.add_argument_group("radio (--source uhd)")
    g.add_argument("--radio-config", type=Path, help="RadioConfig JSON (else --profile and the flags below)")
    g.add_argument("--center-freq-hz", type=float, help="carrier (default: the profile's)")
    g.add_argument("--gain-db", type=float, help="RX gain, dB")
    g.add_argument("--device-args", help="UHD device arguments, e.g. addr=192.168.10.2")
    g.add_argument("--clock-source", help="reference clock: internal, external, gpsdo")
    g.add_argument("--time-source", help="time source: internal, external, gpsdo")
    g.add_argument("--antenna", help="RX antenna port")
    g.add_argument("--cpu-format", choices=IQ_FORMATS, help="host sample format (default sc16)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stream", help="stream IQ (emulator, capture or radio) to the pipeline")
    p.add_argument("--source", choices=["emulator", "replay", "uhd"], default="emulator")
    p.add_argument("--file", type=Path, help="capture to stream (--source replay)")
    add_scenario_args(p)
    _add_uhd_args(p)
    p.add_argument("--bind", default=DEFAULT_IQ_ENDPOINT, help="endpoint to bind (default %(default)s)")
    p.add_argument(
        "--socket",
        choices=["pub", "push"],
        default="pub",
        help="pub: any number of subscribers, a slow one loses messages; push: lossless to one consumer",
    )
    p.add_argument("--format", choices=IQ_FORMATS, default="sc16", help="wire sample format")
    p.add_argument("--chunk-samples", type=int, default=DEFAULT_CHUNK_SAMPLES, help="samples per message")
    p.add_argument("--as-fast-as-possible", action="store_true", help="do not pace to the sample rate")
    p.add_argument(
        "--loop-s",
        type=float,
        help="emulator: generate this many seconds once (whole burst periods) and repeat them, so the "
        "stream keeps real time; --duration-s is then the stream length",
    )
    p.add_argument(
        "--wait-subscriber-s",
        type=float,
        default=0.0,
        help="pub mode: wait up to this long for a subscriber before sending (with --gnuradio-bind: for "
        "one on every GNU Radio socket)",
    )
    p.add_argument("--record", type=Path, help="also record what is sent to this capture file")
    p.add_argument("--force", action="store_true", help="overwrite --record")
    _gnuradio_args().add_gnuradio_output_args(p)
    add_keys_arg(p, server=True)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("record", help="record an IQ stream to a capture file (readable while it grows)")
    p.add_argument("--connect", help="streamer endpoint, e.g. tcp://127.0.0.1:5555 (or --gnuradio)")
    p.add_argument("--out", type=Path, required=True, help="capture file to write (.h5)")
    p.add_argument(
        "--socket", choices=["sub", "pull"], default="sub", help="sub for a pub stream, pull for push"
    )
    _gnuradio_args().add_gnuradio_input_args(p)
    p.add_argument("--idle-timeout-s", type=float, help="stop after this long without IQ")
    p.add_argument("--count", type=int, help="stop after this many messages")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    add_keys_arg(p, server=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("listen", help="print the results a worker publishes")
    p.add_argument("--connect", required=True, help="results endpoint of the worker")
    p.add_argument("--kind", action="append", choices=RESULT_KINDS, help="only these kinds (repeatable)")
    p.add_argument("--count", type=int, help="stop after this many results")
    p.add_argument("--timeout-s", type=float, help="stop after this many seconds")
    add_keys_arg(p, server=False)
    p.add_argument("--json", action="store_true", help="one JSON object per line (arrays by shape)")
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser("keys", help="create CURVE key pairs for the pipeline")
    p.add_argument("--out", type=Path, required=True, help="key directory")
    p.add_argument("--client", action="append", help="client name (repeatable; default: client)")
    p.add_argument("--force", action="store_true", help="replace existing keys")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys)
