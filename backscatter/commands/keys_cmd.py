"""``keys``: create CURVE key pairs; and the ``--keys DIR`` / ``--insecure`` flags of every
command that binds or connects a pipeline socket (``sdr/security.py``, docs/SECURITY.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from backscatter.output import CliError, print_json
from sdr.security import ClientKeys, SecurityError, ServerKeys, check_connect, create_keys


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


def server_keys_from_args(args: argparse.Namespace) -> ServerKeys | None:
    """``--keys DIR`` of a binding command (see :func:`add_keys_arg`)."""
    return None if args.keys is None else ServerKeys.from_dir(args.keys)


def client_keys_from_args(args: argparse.Namespace) -> ClientKeys | None:
    """``--keys DIR`` of a connecting command (see :func:`add_keys_arg`), after the connect
    policy (``sdr.security.check_connect``) has passed ``--connect``."""
    check_connect(args.connect, curve=args.keys is not None, insecure=args.insecure)
    return None if args.keys is None else ClientKeys.from_dir(args.keys)


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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="create CURVE key pairs for the pipeline")
    p.add_argument("--out", type=Path, required=True, help="key directory")
    p.add_argument("--client", action="append", help="client name (repeatable; default: client)")
    p.add_argument("--force", action="store_true", help="replace existing keys")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys)
