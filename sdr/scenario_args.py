"""The emulated scenario a command line asks for: a scenario JSON file, then the scenario flags.

The flags themselves (``--scenario``, ``--seed``, ``--duration-s``, ``--snr-db``, ...) are
defined by ``backscatter.commands.captures_cmd.add_scenario_args``; this module only reads a
parsed command line, for the emulator source kinds (``sdr/sources.py``, ``sdr/loop_source.py``)
and the commands that emulate.
"""

from __future__ import annotations

import json
from typing import Any

from dsp.config_base import ConfigError
from sdr.emulator.scenario import ScenarioConfig


def scenario_from_args(args: Any, **defaults: object) -> ScenarioConfig:
    """``ScenarioConfig`` from ``defaults`` < the ``--scenario`` JSON < the flags.

    ``args``: a parsed command line (``argparse.Namespace``) with ``scenario`` (a path or
    ``None``), ``snr_db`` and ``central_snr_db`` (dB) and optionally ``seed``, ``duration_s``
    (seconds), ``paths`` (NLoS paths), ``mode``, ``circuitry_seed`` and ``ideal``.  Raises
    ``ConfigError`` naming the file and the field.
    """
    data: dict = dict(defaults)
    if args.scenario is not None:
        try:
            data.update(json.loads(args.scenario.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{args.scenario}: cannot read scenario JSON: {exc}") from None
    for flag, key in (
        ("seed", "seed"),
        ("duration_s", "duration_s"),
        ("paths", "n_nlos"),
        ("mode", "mode"),
        ("circuitry_seed", "circuitry_seed"),
    ):
        if getattr(args, flag, None) is not None:
            data[key] = getattr(args, flag)
    if args.snr_db is not None:
        data.update(snr_lower_db=args.snr_db, snr_upper_db=args.snr_db)
    if args.central_snr_db is not None:
        data.update(snr_central_db=args.central_snr_db)
    if getattr(args, "ideal", False):
        data["ideal"] = True
    try:
        return ScenarioConfig.from_dict(data)
    except ConfigError as exc:
        where = f"{args.scenario}: " if args.scenario else ""
        raise ConfigError(f"{where}{exc}") from None
