"""Who may bind where, and CURVE encryption/authentication of the pipeline's sockets.

Bind policy
    A socket may bind a loopback endpoint (``tcp://127.0.0.1:...``, ``tcp://localhost:...``,
    ``tcp://[::1]:...``, ``ipc://...``, ``inproc://...``) freely.  Any other endpoint
    (``tcp://*:5555``, ``tcp://0.0.0.0:5555``, a LAN address or interface name) needs CURVE
    keys, or an explicit ``insecure=True`` (``--insecure``), else :class:`SecurityError`.

Key layout (``backscatter keys --out DIR``, :func:`create_keys`)::

    DIR/server.key                   server public key: give it to every client
    DIR/server.key_secret            server secret key: stays on the binding host (mode 0600)
    DIR/client.key                   client public key
    DIR/client.key_secret            client secret key: stays on the client host (mode 0600)
    DIR/authorized_clients/client.key  public keys a server accepts (one .key file per client)

Connect policy
    Likewise a socket connects to a loopback endpoint freely; connecting to any other endpoint
    needs keys (so the peer is authenticated) or ``insecure=True`` (:func:`check_connect`).

Secret key files must not be readable by group or others (like ssh's private keys): a secret
file with any of the mode bits 0o077 set is refused, naming the file and the ``chmod`` to run.

The binding side (streamer, worker) loads ``server.key_secret`` and accepts exactly the public
keys found in ``authorized_clients/`` (:class:`ServerKeys`).  The connecting side (recorder,
worker's input, ``listen``) loads its ``client.key_secret`` and the server's ``server.key``
(:class:`ClientKeys`).  Key files are ZeroMQ certificates (``zmq.auth`` format).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from dsp.errors import BackscatterError

LOOPBACK_PATTERNS = (
    re.compile(r"tcp://127\.0\.0\.1:[0-9*]+"),
    re.compile(r"tcp://localhost:[0-9*]+"),
    re.compile(r"tcp://\[::1\]:[0-9*]+"),
    re.compile(r"ipc://.+"),
    re.compile(r"inproc://.+"),
)
SERVER_NAME = "server"
AUTHORIZED_DIR = "authorized_clients"


class SecurityError(BackscatterError, ValueError):
    """A bind that the policy refuses, or missing / unreadable keys."""


def is_loopback(endpoint: str) -> bool:
    """Whether ``endpoint`` can only be reached from this host."""
    return any(p.fullmatch(endpoint) for p in LOOPBACK_PATTERNS)


def check_bind(endpoint: str, *, curve: bool, insecure: bool) -> None:
    """Raise :class:`SecurityError` unless binding ``endpoint`` is allowed by the policy."""
    if curve or insecure or is_loopback(endpoint):
        return
    raise SecurityError(
        f"refusing to bind {endpoint}: it is reachable from other hosts; give CURVE keys "
        "(--keys DIR, see `backscatter keys`) or accept an unauthenticated, unencrypted "
        "stream with --insecure (loopback endpoints tcp://127.0.0.1:PORT, tcp://localhost:PORT, "
        "ipc://, inproc:// need neither)"
    )


def check_connect(endpoint: str, *, curve: bool, insecure: bool) -> None:
    """Raise :class:`SecurityError` unless connecting to ``endpoint`` is allowed by the policy."""
    if curve or insecure or is_loopback(endpoint):
        return
    raise SecurityError(
        f"refusing to connect to {endpoint} without keys: anyone on the network could pose as "
        "that stream; give CURVE keys (--keys DIR, see `backscatter keys`) or accept an "
        "unauthenticated, unencrypted connection with --insecure"
    )


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise SecurityError(f"{path}: key file not found")
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise SecurityError(f"{path}: not a ZeroMQ certificate: {exc}") from None
    if secret and not secret_key:
        raise SecurityError(f"{path}: holds no secret key (use the .key_secret file)")
    if secret:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise SecurityError(
                f"{path}: secret key is readable by others (mode {mode:04o}); run `chmod 600 {path}`"
            )
    return public, secret_key


@dataclass(frozen=True)
class ServerKeys:
    """The binding side's key pair and the directory of authorised client public keys."""

    public_key: bytes
    secret_key: bytes
    authorized_dir: Path

    @classmethod
    def from_dir(cls, keys_dir: str | os.PathLike) -> ServerKeys:
        """Load ``DIR/server.key_secret`` and ``DIR/authorized_clients/`` (layout above)."""
        d = Path(keys_dir)
        public, secret = _load(d / f"{SERVER_NAME}.key_secret", secret=True)
        auth = d / AUTHORIZED_DIR
        if not auth.is_dir() or not any(auth.glob("*.key")):
            raise SecurityError(f"{auth}: no authorised client keys (*.key); every client would be refused")
        return cls(public, secret, auth)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ClientKeys:
    """The connecting side's key pair and the public key of the server it trusts."""

    public_key: bytes
    secret_key: bytes
    server_public_key: bytes

    @classmethod
    def from_files(
        cls, client_secret_file: str | os.PathLike, server_public_file: str | os.PathLike
    ) -> ClientKeys:
        public, secret = _load(Path(client_secret_file), secret=True)
        server_public, _ = _load(Path(server_public_file), secret=False)
        return cls(public, secret, server_public)  # type: ignore[arg-type]

    @classmethod
    def from_dir(cls, keys_dir: str | os.PathLike, client: str = "client") -> ClientKeys:
        """Load ``DIR/<client>.key_secret`` and ``DIR/server.key``."""
        d = Path(keys_dir)
        return cls.from_files(d / f"{client}.key_secret", d / f"{SERVER_NAME}.key")


def apply_client_keys(sock: zmq.Socket, keys: ClientKeys) -> None:
    """Make ``sock`` (before ``connect``) a CURVE client of the server ``keys`` trusts."""
    sock.curve_secretkey = keys.secret_key
    sock.curve_publickey = keys.public_key
    sock.curve_serverkey = keys.server_public_key


def _listing(d: Path) -> tuple:
    """What decides the authorised keys: every ``*.key`` file's name, size and mtime."""
    try:
        return tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in d.glob("*.key")))
    except OSError:
        return ()


class CurveServer:
    """A ZAP authenticator on ``context`` that admits only the authorised client keys.

    ``apply(sock)`` (before ``bind``) makes a socket a CURVE server; ``stop()`` ends the
    authenticator thread (call it after closing the sockets, before terminating the context).
    ``authorized_clients/`` is read again within ``reload_period_s`` of a change, so adding or
    removing a client key takes effect without a restart (for new connections: ZeroMQ
    authenticates a peer once, at its handshake, so a revoked client that is already connected
    stays connected until it reconnects or the server restarts).
    """

    def __init__(self, context: zmq.Context, keys: ServerKeys, reload_period_s: float = 1.0):
        self.keys = keys
        self._auth = ThreadAuthenticator(context)
        self._auth.start()
        self._seen = _listing(keys.authorized_dir)
        self._auth.configure_curve(domain="*", location=str(keys.authorized_dir))
        self.reloads = 0
        self._stop = threading.Event()
        self._watch = threading.Thread(
            target=self._watch_keys, args=(reload_period_s,), name="curve-keys", daemon=True
        )
        self._watch.start()

    def _watch_keys(self, period_s: float) -> None:
        while not self._stop.wait(period_s):
            now = _listing(self.keys.authorized_dir)
            if now != self._seen:
                self._seen = now
                # one dict assignment inside pyzmq: the authenticator thread sees old or new keys
                self._auth.configure_curve(domain="*", location=str(self.keys.authorized_dir))
                self.reloads += 1

    def apply(self, sock: zmq.Socket) -> None:
        sock.curve_secretkey = self.keys.secret_key
        sock.curve_publickey = self.keys.public_key
        sock.curve_server = True

    def stop(self) -> None:
        self._stop.set()
        if self._auth.is_alive():
            self._auth.stop()


def create_keys(
    out_dir: str | os.PathLike, clients: tuple[str, ...] = ("client",), force: bool = False
) -> dict[str, str]:
    """Create the server key pair and one key pair per client, in the layout above.

    Each client's public key is also copied into ``authorized_clients/``.  Refuses to replace
    existing keys unless ``force``.  Returns the paths written, by role.
    """
    d = Path(out_dir)
    names = [SERVER_NAME, *clients]
    if len(set(names)) != len(names) or not all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", n) for n in names):
        raise SecurityError(
            f"client names must be distinct [A-Za-z0-9_-] names other than 'server': {clients}"
        )
    existing = [
        d / f"{n}{ext}" for n in names for ext in (".key", ".key_secret") if (d / f"{n}{ext}").exists()
    ]
    if existing and not force:
        raise SecurityError(f"{existing[0]} exists; refusing to overwrite keys (use --force)")
    d.mkdir(mode=0o700, parents=True, exist_ok=True)  # secret files are briefly umask-readable
    auth = d / AUTHORIZED_DIR
    auth.mkdir(exist_ok=True)
    out: dict[str, str] = {}
    for n in names:
        public, secret = zmq.auth.create_certificates(d, n)
        os.chmod(secret, 0o600)
        out[f"{n}_public"], out[f"{n}_secret"] = public, secret
        if n != SERVER_NAME:
            (auth / f"{n}.key").write_bytes(Path(public).read_bytes())
    out["authorized_dir"] = str(auth)
    return out
