"""Typed ranging-method parameters: validation, ReceiverConfig, the sweeps' --set, the listing."""

from __future__ import annotations

import json
import pickle

import pytest

from backscatter.cli import main
from dsp.config_base import ConfigError
from dsp.epoch import method_for
from dsp.ranging import REGISTRY, get_method
from dsp.receiver_config import ReceiverConfig
from dsp.waveform import get_profile
from experiments.engine import SweepError
from experiments.sweeps import get_sweep, make_config, parse_overrides


@pytest.fixture(scope="module")
def wf():
    return get_profile("default")


def test_documented_music_parameter_is_accepted(wf):
    m = get_method("music", wf, gate_cells_before=5)
    assert m.params.gate_cells_before == 5


@pytest.mark.parametrize(
    ("method", "params", "pattern"),
    [
        ("music", {"gate_cells_before": -1}, r"'music'.*gate_cells_before = -1.*\[0, 64\]"),
        ("music", {"gate_cells_before": 2.5}, r"'music'.*gate_cells_before.*2\.5"),
        ("music", {"criterion": "bic"}, r"'music'.*criterion = 'bic'"),
        ("music", {"subvector_len": 401}, r"'music'.*subvector_len = 401"),
        ("ir_first", {"threshold": 1.5}, r"'ir_first'.*threshold = 1\.5"),
        ("ir_first_interp", {"oversample": "x"}, r"'ir_first_interp'.*oversample.*'x'"),
        ("ir_first", {"thresh": 0.2}, r"'ir_first'.*unknown parameter.*thresh"),
    ],
)
def test_bad_parameter_names_method_parameter_and_value(wf, method, params, pattern):
    with pytest.raises(ConfigError, match=pattern):
        get_method(method, wf, **params)


def test_every_method_declares_typed_parameters():
    for name, cls in REGISTRY.items():
        assert cls.Params.method == name
        for p in cls.Params.describe():
            assert p["doc"] and p["range"], (name, p["name"])


def test_receiver_config_carries_method_params_to_the_epoch(wf):
    cfg = ReceiverConfig(methods=("music",), method_params={"music": {"gate_cells_before": 4}})
    assert cfg.methods == ("music",) and cfg.method_params == {"music": {"gate_cells_before": 4}}
    again = ReceiverConfig.from_json(cfg.to_json())
    assert again == cfg and pickle.loads(pickle.dumps(cfg)).method_params == cfg.method_params
    m = method_for("music", wf, cfg.ir_threshold, cfg.method_params["music"])
    assert m.params.gate_cells_before == 4 and m.params.threshold == cfg.ir_threshold
    with pytest.raises(ConfigError, match=r"method_params.*'music'.*max_order = 0"):
        ReceiverConfig(method_params={"music": {"max_order": 0}})
    with pytest.raises(ConfigError, match=r"unknown ranging method 'musik'"):
        ReceiverConfig(method_params={"musik": {}})


def test_sweep_set_method_params():
    sweep = get_sweep("ranging")
    over = parse_overrides(sweep.config_cls, ['method_params={"music": {"gate_cells_before": 3}}'])
    cfg = make_config(sweep, True, over)
    assert cfg.method_params == {"music": {"gate_cells_before": 3}}
    bad = parse_overrides(sweep.config_cls, ['method_params={"music": {"gate_cells_before": 99}}'])
    with pytest.raises(SweepError, match=r"gate_cells_before = 99"):
        make_config(sweep, True, bad)


def test_methods_listing(capsys):
    assert main(["methods", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {p["name"] for p in out["music"]["parameters"]}
    assert {"gate_cells_before", "subvector_len", "criterion"} <= names
