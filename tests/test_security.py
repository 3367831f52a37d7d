"""Connect policy, secret-key permissions and key revocation without a restart (sdr/security.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import zmq

from sdr.security import (
    ClientKeys,
    CurveServer,
    SecurityError,
    ServerKeys,
    apply_client_keys,
    check_connect,
    create_keys,
)


def test_connect_policy():
    for ep in ("tcp://127.0.0.1:5555", "tcp://localhost:1", "ipc:///tmp/x"):
        check_connect(ep, curve=False, insecure=False)
    for ep in ("tcp://192.0.2.7:5555", "tcp://lab-radio:5555", "tcp://127.0.0.1.evil:1"):
        with pytest.raises(SecurityError, match="--insecure"):
            check_connect(ep, curve=False, insecure=False)
        check_connect(ep, curve=True, insecure=False)
        check_connect(ep, curve=False, insecure=True)


@pytest.mark.parametrize("command", ["listen", "record", "worker"])
def test_connecting_commands_refuse_a_remote_endpoint_without_keys(command, tmp_path):
    argv = [sys.executable, "-m", "backscatter.cli", command, "--connect", "tcp://192.0.2.7:5555"]
    argv += ["--out", str(tmp_path / "r.h5")] if command == "record" else []
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "refusing to connect to tcp://192.0.2.7:5555" in proc.stderr and "--insecure" in proc.stderr
    assert not (tmp_path / "r.h5").exists()


def test_a_secret_key_readable_by_others_is_refused(tmp_path):
    create_keys(tmp_path / "k")
    secret = tmp_path / "k" / "client.key_secret"
    os.chmod(secret, 0o644)
    with pytest.raises(SecurityError, match=r"mode 0644.*chmod 600"):
        ClientKeys.from_dir(tmp_path / "k")
    os.chmod(tmp_path / "k" / "server.key_secret", 0o640)
    with pytest.raises(SecurityError, match=r"server\.key_secret"):
        ServerKeys.from_dir(tmp_path / "k")
    os.chmod(secret, 0o600)
    ClientKeys.from_dir(tmp_path / "k")  # public keys may stay world-readable


def _delivered(ctx: zmq.Context, endpoint: str, keys: ClientKeys, server: zmq.Socket, wait_s: float) -> bool:
    """Whether a fresh client with ``keys`` gets a message through to ``server`` within ``wait_s``."""
    push = ctx.socket(zmq.PUSH)
    push.linger = 0
    apply_client_keys(push, keys)
    push.connect(endpoint)
    try:
        if not push.poll(int(wait_s * 1000), zmq.POLLOUT):  # no authenticated peer to send to
            return False
        push.send(b"hello", zmq.NOBLOCK)
        return server.poll(int(wait_s * 1000)) != 0 and server.recv() == b"hello"
    finally:
        push.close()


def test_removing_a_client_key_revokes_it_without_a_restart(tmp_path):
    create_keys(tmp_path / "k", clients=("gui", "rec"))
    d = tmp_path / "k"
    ctx = zmq.Context()
    curve = CurveServer(ctx, ServerKeys.from_dir(d), reload_period_s=0.1)
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    curve.apply(pull)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    ep = f"tcp://127.0.0.1:{port}"
    gui, rec = ClientKeys.from_dir(d, "gui"), ClientKeys.from_dir(d, "rec")
    try:
        assert _delivered(ctx, ep, gui, pull, 5.0) and _delivered(ctx, ep, rec, pull, 5.0)
        (d / "authorized_clients" / "gui.key").unlink()
        deadline = time.monotonic() + 5
        while curve.reloads == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert curve.reloads == 1
        assert not _delivered(ctx, ep, gui, pull, 1.0)
        assert _delivered(ctx, ep, rec, pull, 5.0)  # the others are untouched
        (d / "authorized_clients" / "gui.key").write_bytes((d / "gui.key").read_bytes())
        while curve.reloads == 1 and time.monotonic() < deadline + 5:
            time.sleep(0.05)
        assert _delivered(ctx, ep, gui, pull, 5.0)
    finally:
        pull.close()
        curve.stop()
        ctx.term()
