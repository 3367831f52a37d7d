"""Result sources for the GUI: a ZeroMQ SUB socket read off the GUI thread.

Every source is a Python thread that fills an :class:`~gui.inbox.Inbox`; the GUI
drains it from a timer, so neither a silent nor a flooding endpoint can block it.
Frames are validated and decoded by :func:`sdr.transport.decode` (``sdr/MESSAGES.md``);
this module only owns the socket, its connection monitor and the hand-over.
"""

from __future__ import annotations

import threading

import zmq
from zmq.utils.monitor import recv_monitor_message

from gui.inbox import Inbox
from sdr.security import ClientKeys, apply_client_keys
from sdr.transport import MessageError, ResultMessage, decode

MAX_MESSAGE_BYTES = 16 * 2**20  # a result frame is at most 2**20 complex64 values (8 MiB)
HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
    zmq.EVENT_HANDSHAKE_FAILED_AUTH,
)
MONITOR_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | sum(HANDSHAKE_FAILED)


class SourceThread:
    """A daemon thread running :meth:`_run` until :meth:`stop`; results go to ``self.inbox``."""

    def __init__(self, inbox: Inbox):
        self.inbox = inbox
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, name=type(self).__name__, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to finish and wait for it (bounded)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _guarded(self) -> None:
        try:
            self._run()
        except Exception as exc:  # shown in the status bar instead of dying silently
            self.inbox.update(error=f"{type(exc).__name__}: {exc}")

    def _run(self) -> None:
        raise NotImplementedError


class ZmqSource(SourceThread):
    """Subscribe to every topic of a results endpoint (``tcp://host:port``) and decode messages.

    ``client_keys`` makes the socket a CURVE client (a worker bound to a non-loopback address).
    """

    def __init__(
        self,
        endpoint: str,
        client_keys: ClientKeys | None = None,
        poll_s: float = 0.1,
        rcv_hwm: int = 10_000,
    ):
        super().__init__(Inbox(endpoint, "connect"))
        self.endpoint = endpoint
        self.client_keys = client_keys
        self._poll_ms = int(poll_s * 1000)
        self._rcv_hwm = rcv_hwm

    def _run(self) -> None:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, self._rcv_hwm)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        if self.client_keys is not None:
            apply_client_keys(sock, self.client_keys)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        monitor = None
        try:
            monitor = sock.get_monitor_socket(MONITOR_EVENTS)  # before connect: no event is missed
            self.inbox.update(connected=False)
            try:
                sock.connect(self.endpoint)
            except zmq.ZMQError as exc:
                self.inbox.update(error=f"cannot connect to {self.endpoint}: {exc}")
                return
            poller = zmq.Poller()
            poller.register(sock, zmq.POLLIN)
            poller.register(monitor, zmq.POLLIN)
            while not self.stopping:
                ready = dict(poller.poll(self._poll_ms))
                if monitor in ready:
                    self._monitor_events(monitor)
                if sock in ready:
                    self._receive_all(sock)
        finally:
            if monitor is not None:
                sock.disable_monitor()
                monitor.close(linger=0)
            sock.close(linger=0)
            ctx.term()

    def _monitor_events(self, monitor: zmq.Socket) -> None:
        while monitor.poll(0):
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.inbox.update(connected=True, note="")
            elif event == zmq.EVENT_DISCONNECTED:
                self.inbox.update(connected=False)
            elif event in HANDSHAKE_FAILED:
                self.inbox.update(connected=False, note="handshake failed (CURVE keys?)")

    def _receive_all(self, sock: zmq.Socket, limit: int = 1000) -> None:
        """Read what is waiting (at most ``limit`` messages, so ``stop`` stays prompt)."""
        for _ in range(limit):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                msg = decode(frames)
            except MessageError as exc:
                self.inbox.decode_error(exc.reason)
                continue
            if not isinstance(msg, ResultMessage):  # IQ on a results endpoint
                self.inbox.decode_error("topic")
                continue
            self.inbox.put(msg.kind, msg.fields, msg.arrays, msg.stream_id, msg.seq)
