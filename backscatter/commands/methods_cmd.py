"""``methods``: the ranging methods and their typed parameters."""

from __future__ import annotations

import argparse

from backscatter.output import print_json
from dsp.ranging.params import describe_methods


def cmd_methods(args: argparse.Namespace) -> dict:
    out = describe_methods()
    if args.json:
        print_json(out)
        return out
    for name, info in out.items():
        print(f"{name}: {info['summary']}")
        for p in info["parameters"]:
            rng = f" in {p['range']}" if p["range"] else ""
            print(f"    {p['name']} ({p['type']}, default {p['default']!r}{rng}): {p['doc']}")
    print(
        "\nSet them with ReceiverConfig.method_params ({method: {parameter: value}}) in --receiver-config, "
        'or a sweep\'s --set method_params=\'{"music": {"gate_cells_before": 5}}\'.'
    )
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "methods", help="list the ranging methods and their parameters (name, type, default, range)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_methods)
