"""Mutation check, session 14 (docs/MUTATION.md): ``dsp.receiver_config``, ``dsp.ranging.params``
and ``dsp.ranging.base``.

Before this file, one test refused a bad ``ReceiverConfig`` value (a method's parameter): none of
its 25 bounds was checked.  Here every bound is taken at its exact value (accepted) and one step
past it (refused with the whole message: class, field, value and the admissible range), the
defaults are those docs/RECEIVER.md quotes, and the ranging methods' parameter machinery
(``_check_range``, the listing, ``validate_method_params``) and the registry's helpers
(``get_method``, eq. (77)-(79), ``implausibility``) are checked against the formulas of their
docstrings.
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from dsp.config_base import ConfigError
from dsp.ranging import REGISTRY, RangingMethod, bistatic_range_m, combine_ranges, get_method, implausibility
from dsp.ranging.ir_first import IRFirstParams
from dsp.ranging.params import MethodParams, describe_methods, param, validate_method_params
from dsp.receiver_config import ReceiverConfig
from dsp.waveform import WaveformConfig

WF = WaveformConfig()
C = 299_792_458.0
DOWN, UP = -math.inf, math.inf


def below(x: float) -> float:
    return math.nextafter(x, DOWN)


def above(x: float) -> float:
    return math.nextafter(x, UP)


def refused(message: str, **fields: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        ReceiverConfig(**fields)
    assert str(exc.value) == message


# ----- ReceiverConfig ----------------------------------------------------------------------------
def test_defaults_are_the_documented_ones():
    """docs/RECEIVER.md: +-10 ppm CFO search, 32 guard samples, threshold 30, 1/16-sample delay
    levels, 8 kernel levels, 0.5 ppm drift check, 90,000 acquisition windows, 1500-window epochs,
    forgetting factor 0.95; the rest as the class lists them."""
    cfg = ReceiverConfig()
    assert cfg.to_dict() == {
        "tag_mode": "burst", "segment_symbols": 480, "epoch_symbols": 1500,
        "acquisition_min_symbols": 960, "acquisition_max_symbols": 90_000, "acquisition_margin": 1.03,
        "tag_delay_window": [-8, 24], "timing_guard_samples": 32, "detect_threshold": 30.0,
        "preamble_match": 0.5, "ir_threshold": 0.3, "methods": ["ir_first", "ir_first_interp"],
        "method_params": {}, "tx_rx_distance_m": None, "phase_track_max_hz": 4.0, "cfo_forget": 0.9,
        "reference_forget": 0.95, "cfo_max_ppm": 10.0, "timing_tracking": True, "timing_loop_gain": 0.5,
        "timing_rate_gain": 0.05, "delay_poly_degree": 4, "delay_levels": 16,
        "resampled_alignment": "kernel", "kernel_levels": 8, "drift_check_ppm": 0.5,
    }  # fmt: skip
    assert ReceiverConfig().method_params is not cfg.method_params  # a fresh dict each
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.segment_symbols = 1  # type: ignore[misc]


ACCEPTED = [
    {"tag_mode": "cw"},
    {"segment_symbols": 16},
    {"segment_symbols": 100_000},
    {"epoch_symbols": 16},
    {"acquisition_min_symbols": 1},
    {"acquisition_min_symbols": 960, "acquisition_max_symbols": 960},
    {"tag_delay_window": (-1, 1)},
    {"tag_delay_window": (-128, 128)},
    {"timing_guard_samples": 0},
    {"timing_guard_samples": 255},
    {"detect_threshold": 5e-324},
    {"preamble_match": 5e-324},
    {"preamble_match": below(1.0)},
    {"ir_threshold": 5e-324},
    {"ir_threshold": below(1.0)},
    {"methods": ("nomp",)},
    {"methods": ("music", "ir_first")},
    {"tx_rx_distance_m": 0.0},
    {"tx_rx_distance_m": below(1e5)},
    {"cfo_forget": 1.0},
    {"cfo_forget": 5e-324},
    {"reference_forget": 0.0},
    {"reference_forget": below(1.0)},
    {"cfo_max_ppm": 0.0},
    {"cfo_max_ppm": 100.0},
    {"timing_loop_gain": 1.0},
    {"timing_loop_gain": 5e-324},
    {"timing_rate_gain": 0.0},
    {"timing_rate_gain": 0.5},
    {"delay_poly_degree": 2},
    {"delay_poly_degree": 8},
    {"delay_levels": 2},
    {"delay_levels": 1024},
    {"resampled_alignment": "polynomial"},
    {"kernel_levels": 1},
    {"kernel_levels": 256},
    {"drift_check_ppm": 100.0},
    {"drift_check_ppm": 5e-324},
]


@pytest.mark.parametrize("fields", ACCEPTED, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_each_bound_is_accepted_at_its_value(fields):
    cfg = ReceiverConfig(**fields)
    assert ReceiverConfig.from_json(cfg.to_json()) == cfg


REFUSED = [
    ("tag_mode", "CW", "must be 'burst' or 'cw'"),
    ("segment_symbols", 15, "must be in [16, 100000]"),
    ("segment_symbols", 100_001, "must be in [16, 100000]"),
    ("epoch_symbols", 15, "must be at least 16"),
    ("acquisition_min_symbols", 0, "must be positive and at most acquisition_max_symbols"),
    ("acquisition_min_symbols", 90_001, "must be positive and at most acquisition_max_symbols"),
    ("tag_delay_window", (0, 1), "must be (negative, positive) samples, at most 256 taps"),
    ("tag_delay_window", (-1, 0), "must be (negative, positive) samples, at most 256 taps"),
    ("tag_delay_window", (-128, 129), "must be (negative, positive) samples, at most 256 taps"),
    ("tag_delay_window", (-129, 128), "must be (negative, positive) samples, at most 256 taps"),
    ("timing_guard_samples", -1, "must be in [0, 256)"),
    ("timing_guard_samples", 256, "must be in [0, 256)"),
    ("detect_threshold", 0.0, "must be positive"),
    ("preamble_match", 0.0, "must be in (0, 1)"),
    ("preamble_match", 1.0, "must be in (0, 1)"),
    ("ir_threshold", 0.0, "must be in (0, 1)"),
    ("ir_threshold", 1.0, "must be in (0, 1)"),
    ("tx_rx_distance_m", -5e-324, "must be in [0, 1e5) m"),
    ("tx_rx_distance_m", 1e5, "must be in [0, 1e5) m"),
    ("cfo_forget", 0.0, "forgetting factors must be in (0, 1]"),
    ("cfo_forget", above(1.0), "forgetting factors must be in (0, 1]"),
    ("cfo_max_ppm", -5e-324, "must be in [0, 100] ppm of the carrier"),
    ("cfo_max_ppm", above(100.0), "must be in [0, 100] ppm of the carrier"),
    ("timing_loop_gain", 0.0, "loop gains must be in (0, 1] (offset) and [0, 0.5] (rate)"),
    ("timing_loop_gain", above(1.0), "loop gains must be in (0, 1] (offset) and [0, 0.5] (rate)"),
    ("delay_poly_degree", 1, "must be in [2, 8]"),
    ("delay_poly_degree", 9, "must be in [2, 8]"),
    ("delay_levels", 0, "must be an even number in [2, 1024]"),
    ("delay_levels", 1026, "must be an even number in [2, 1024]"),
    ("delay_levels", 15, "must be an even number in [2, 1024]"),
    ("resampled_alignment", "poly", "must be 'kernel' or 'polynomial'"),
    ("kernel_levels", 0, "must be in [1, 256]"),
    ("kernel_levels", 257, "must be in [1, 256]"),
    ("drift_check_ppm", 0.0, "must be in (0, 100] ppm"),
    ("drift_check_ppm", above(100.0), "must be in (0, 100] ppm"),
]


@pytest.mark.parametrize(("name", "value", "why"), REFUSED, ids=lambda v: str(v)[:20])
def test_one_step_past_each_bound_is_refused_naming_field_and_value(name, value, why):
    refused(f"ReceiverConfig.{name} = {value!r}: {why}", **{name: value})


def test_the_second_factor_and_gain_are_refused_under_their_own_names():
    """``reference_forget`` in [0, 1) and ``timing_rate_gain`` in [0, 0.5]: once checked with
    their partners and refused under the partner's name and value (MUTATION.md session 14)."""
    for value in (1.0, -5e-324):
        refused(f"ReceiverConfig.reference_forget = {value!r}: must be in [0, 1)", reference_forget=value)
    for value in (above(0.5), -5e-324):
        refused(
            f"ReceiverConfig.timing_rate_gain = {value!r}: must be in [0, 0.5] (the rate's loop gain)",
            timing_rate_gain=value,
        )


def test_methods_must_be_known_and_not_none():
    known = sorted(REGISTRY)
    refused(f"ReceiverConfig.methods = (): unknown ranging method(s) []; known: {known}", methods=())
    refused(
        f"ReceiverConfig.methods = ('ir_first', 'x', 'y'): "
        f"unknown ranging method(s) ['x', 'y']; known: {known}",
        methods=("ir_first", "x", "y"),
    )


def test_method_params_checked_and_kept_as_plain_dicts():
    cfg = ReceiverConfig(method_params={"music": {"gate_cells_before": 4}, "nomp": {}})
    assert cfg.method_params == {"music": {"gate_cells_before": 4}, "nomp": {}}
    assert type(cfg.method_params["music"]) is dict
    # the checked values replace the given ones: coerced to their types, in plain dicts
    cfg = ReceiverConfig(
        method_params=MappingProxyType({"ir_first_interp": MappingProxyType({"oversample": 8.0})})
    )
    assert cfg.method_params == {"ir_first_interp": {"oversample": 8}}
    assert type(cfg.method_params) is dict and type(cfg.method_params["ir_first_interp"]) is dict
    assert type(cfg.method_params["ir_first_interp"]["oversample"]) is int
    with pytest.raises(ConfigError) as exc:
        ReceiverConfig(method_params={"musik": {}})
    assert (
        str(exc.value)
        == f"ReceiverConfig.method_params: unknown ranging method 'musik'; known: {sorted(REGISTRY)}"
    )


# ----- the methods' parameters -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RangeProbe(MethodParams):
    """Not registered: a ``MethodParams`` with one parameter per kind of range."""

    method = "probe"
    closed: float = param(1.0, "a closed range", "[0, 2]")
    open_lo: float = param(1.0, "open below", "(0, 2]")
    lower_only: float = param(1.0, "no upper bound", ">= 0")
    upper_only: float = param(1.0, "no lower bound", "<= 2")
    free: float = param(1.0, "finite only")
    undocumented: int = 0

    def _validate(self) -> None:
        self._check_range("closed", 0.0, 2.0)
        self._check_range("open_lo", 0.0, 2.0, open_lo=True)
        self._check_range("lower_only", 0.0)
        self._check_range("upper_only", None, 2.0)
        self._check_range("free")


def test_check_range_bounds_finite_values_and_names_the_method():
    for fields in (
        {"closed": 0.0},
        {"closed": 2.0},
        {"open_lo": 5e-324},
        {"open_lo": 2.0},
        {"lower_only": 0.0},
        {"lower_only": 1e300},
        {"upper_only": 2.0},
        {"upper_only": -1e300},
        {"free": -1e300},
    ):
        RangeProbe(**fields)
    for name, value in (
        ("closed", -5e-324),
        ("closed", above(2.0)),
        ("open_lo", 0.0),
        ("open_lo", above(2.0)),
        ("lower_only", -5e-324),
        ("upper_only", above(2.0)),
        ("closed", math.nan),
        ("free", math.inf),
        ("free", -math.inf),
        ("free", math.nan),
        ("lower_only", math.inf),
    ):
        with pytest.raises(ConfigError) as exc:
            RangeProbe(**{name: value})
        want = (
            f"ranging method 'probe': RangeProbe.{name} = {value!r}: must be in {RangeProbe.range_of(name)}"
        )
        assert str(exc.value) == want
    assert RangeProbe.range_of("open_lo") == "(0, 2]" and RangeProbe.range_of("undocumented") == ""
    assert RangeProbe.range_of("free") == ""  # param() without a range
    with pytest.raises(ConfigError) as exc:
        MethodParams.from_dict({"x": 1})  # the parameters of a method that has none
    assert str(exc.value) == "ranging method '': unknown parameter(s) ['x']; known: []"


def test_params_from_dict_names_the_method():
    with pytest.raises(ConfigError) as exc:
        RangeProbe.from_dict([1])  # type: ignore[arg-type]
    assert str(exc.value) == "ranging method 'probe': parameters must be a mapping, got [1]"
    with pytest.raises(ConfigError) as exc:
        RangeProbe.from_dict({"zz": 1, "closed": 1.0, "aa": 2})
    known = "['closed', 'free', 'lower_only', 'open_lo', 'undocumented', 'upper_only']"
    assert str(exc.value) == f"ranging method 'probe': unknown parameter(s) ['aa', 'zz']; known: {known}"
    assert RangeProbe.from_dict({"closed": 0.5}, base=RangeProbe(free=3.0)) == RangeProbe(
        closed=0.5, free=3.0
    )


def test_describe_lists_name_type_default_range_doc():
    d = RangeProbe.describe()
    assert d[0] == {
        "name": "closed",
        "type": "float",
        "default": 1.0,
        "range": "[0, 2]",
        "doc": "a closed range",
    }
    assert d[-1] == {"name": "undocumented", "type": "int", "default": 0, "range": "", "doc": ""}
    assert [e["name"] for e in d] == RangeProbe.field_names()
    music = describe_methods()["music"]["parameters"]
    assert next(p for p in music if p["name"] == "subvector_len")["type"] == "int | None"


def test_describe_methods_lists_every_registered_method_by_its_first_docstring_line():
    out = describe_methods()
    assert list(out) == sorted(REGISTRY)
    for name, entry in out.items():
        assert entry["summary"] == REGISTRY[name].__doc__.strip().splitlines()[0]
        assert entry["parameters"] == REGISTRY[name].Params.describe()
    assert out["ir_first"]["parameters"] == [
        {
            "name": "threshold",
            "type": "float",
            "default": 0.3,
            "range": "(0, 1)",
            "doc": "first peak above this fraction of the CIR maximum (eta, eq. (80)-(83))",
        }
    ]


class NoDoc(RangingMethod):
    name = ""

    def first_path_delay_s(self, cfr: np.ndarray, cir: np.ndarray) -> float:
        return 0.0


def test_a_method_without_a_docstring_is_listed_with_an_empty_summary(monkeypatch):
    assert NoDoc.__doc__ is None
    monkeypatch.setitem(REGISTRY, "nodoc", NoDoc)
    assert describe_methods()["nodoc"] == {"summary": "", "parameters": []}


def test_validate_method_params_returns_only_the_given_parameters():
    assert validate_method_params({}) == {}
    out = validate_method_params({"ir_first_interp": {"oversample": 8.0}})
    assert out == {"ir_first_interp": {"oversample": 8}} and type(out["ir_first_interp"]["oversample"]) is int
    with pytest.raises(ConfigError) as exc:
        validate_method_params([("music", {})])  # type: ignore[arg-type]
    assert str(exc.value) == "method_params must map method -> {parameter: value}, got [('music', {})]"
    with pytest.raises(ConfigError) as exc:
        validate_method_params({"ir_first": {"threshold": 0.2}, "nope": {}})
    assert str(exc.value) == f"unknown ranging method 'nope'; known: {sorted(REGISTRY)}"


# ----- the registry and eq. (77)-(79) -----------------------------------------------------------
class Unregistered(RangingMethod):
    """A method without a name: not registered."""

    name = ""
    Params = IRFirstParams

    def first_path_delay_s(self, cfr: np.ndarray, cir: np.ndarray) -> float:
        return 1.5e-9


def test_get_method_builds_checked_params_and_unknown_names_are_listed():
    m = get_method("ir_first_interp", WF, oversample=4)
    assert type(m) is REGISTRY["ir_first_interp"] and m.wf is WF and m.params.oversample == 4
    assert get_method("nomp", WF).params == REGISTRY["nomp"].Params()
    with pytest.raises(ValueError) as exc:
        get_method("nope", WF)
    assert str(exc.value) == f"unknown ranging method 'nope'; known: {sorted(REGISTRY)}"
    assert "" not in REGISTRY and Unregistered not in REGISTRY.values()
    assert {name: cls.name for name, cls in REGISTRY.items()} == {name: name for name in REGISTRY}


def test_a_method_takes_its_own_params_class_only():
    m = Unregistered(WF)
    assert m.params == IRFirstParams() and m.wf is WF
    p = IRFirstParams(threshold=0.2)
    assert Unregistered(WF, p).params is p
    with pytest.raises(TypeError) as exc:
        Unregistered(WF, MethodParams())
    assert str(exc.value) == "ranging method '': params must be IRFirstParams, got MethodParams()"
    delay, std = m.delay_and_std_s(np.zeros(800), np.zeros(4096))
    assert delay == 1.5e-9 and math.isnan(std)
    with pytest.raises(NotImplementedError, match=r"^ranging method '' does not fit bands jointly$"):
        m.joint_delay_and_std_s(np.zeros((2, 800)))
    assert RangingMethod.joint_bands is False and RangingMethod.Params is MethodParams


def test_bistatic_range_is_eq_77_78_modulo_the_unambiguous_range():
    t0, tu = 100e-9, 150e-9
    assert bistatic_range_m(tu, t0, 20.0, 1.5, 1e4) == pytest.approx(20.0 + 50e-9 * C - 1.5, rel=1e-15)
    # a side band ahead of the central one wraps to R_max minus the lead
    assert bistatic_range_m(t0, tu, 0.0, 0.0, 1e4) == pytest.approx(1e4 - 50e-9 * C, rel=1e-15)
    assert bistatic_range_m(t0, t0, 3.0, 0.0, 2.0) == 1.0
    assert type(bistatic_range_m(t0, t0, 3.0, 0.0, 2.0)) is float


def test_implausibility_bounds():
    tenth = 0.1 * WF.resolution_m  # 1.25 m
    assert implausibility(20.0 - tenth, 20.0, WF) is None
    assert (
        implausibility(below(20.0 - tenth), 20.0, WF)
        == f"{below(20.0 - tenth):.2f} m is below the TX-RX distance 20.00 m"
    )
    assert implausibility(-1.0, None, WF) is None  # d_0 unknown: excess path lengths
    half = WF.max_range_m / 2
    assert implausibility(half, 20.0, WF) is None and implausibility(half, None, WF) is None
    assert (
        implausibility(above(half), None, WF)
        == "4997 m is beyond half the unambiguous range, 4997 m (a wrapped delay)"
    )


def test_combine_ranges_is_the_reliability_weighted_mean():
    r = {"lower": 10.0, "upper": 14.0}
    assert combine_ranges(r, {"lower": 1.0, "upper": 3.0}) == 13.0
    assert combine_ranges(r, {"lower": -5.0, "upper": 2.0}) == 14.0  # negative weights count as 0
    assert combine_ranges(r, {"upper": 2.0}) == 14.0  # a band without a reliability weighs 0
    assert combine_ranges(r, {"lower": 0.0, "upper": -1.0}) == 12.0  # no weight: the plain mean
    assert combine_ranges(r, {}) == 12.0
    assert combine_ranges({"lower": 10.0}, {"lower": 1e-300}) == 10.0
    assert combine_ranges(r, {"lower": 0.25, "upper": 0.75}) == 13.0  # weights need not sum past 1
    assert combine_ranges(r, {"lower": 1e-3, "upper": 3e-3}) == 13.0


def test_a_method_must_implement_first_path_delay_s():
    class Incomplete(RangingMethod):
        name = ""

    with pytest.raises(TypeError, match="first_path_delay_s"):
        Incomplete(WF)  # type: ignore[abstract]
