"""Every ranging method's numeric parameters against the range text ``backscatter methods`` prints
(the contract of dsp/ranging/params.py).  Its own module with light imports: the mutation check
(docs/MUTATION.md) runs it before each method's tests."""

from __future__ import annotations

import math
import re

import pytest

from dsp.config_base import ConfigError
from dsp.ranging import REGISTRY, get_method
from dsp.waveform import get_profile

_INTERVAL = r"^([\[(])(-?[\d.e+-]+|inf), (-?[\d.e+-]+|inf)([\])])(?: (?:m|dB))?$"


def _outside(v: float, kind: str, up: bool) -> float:
    step = 1 if kind == "int" else 1e-9 * max(1.0, abs(v))
    return v + step if up else v - step


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_numeric_parameter_is_refused_just_outside_its_documented_range(name):
    """The range text ``backscatter methods`` prints is the contract: each numeric parameter's
    ``[lo, hi]`` / ``(lo, hi)`` (or ``>= lo``) parses, a closed bound and the next value inside
    an open one are accepted, an open bound and the next value beyond either bound (1 for an
    int, a part in 1e9 for a float) are refused with a ConfigError naming the parameter."""
    cls, wf = REGISTRY[name], get_profile("default")
    for p in cls.Params.describe():
        if p["type"] not in ("int", "float"):
            continue
        kind, text = p["type"], p["range"]
        at_least = re.fullmatch(r">= (\d+)", text)
        if at_least:
            lo, hi, lo_open, hi_open = float(at_least.group(1)), math.inf, False, True
        else:
            m = re.fullmatch(_INTERVAL, text)
            assert m, (name, p["name"], text)
            lo, hi = float(m.group(2)), float(m.group(3))
            lo_open, hi_open = m.group(1) == "(", m.group(4) == ")"
        cast = int if kind == "int" else float
        for bound, is_open, up in ((lo, lo_open, False), (hi, hi_open, True)):
            if math.isinf(bound):
                continue
            if is_open:
                with pytest.raises(ConfigError, match=p["name"]):
                    get_method(name, wf, **{p["name"]: cast(bound)})
                inside = cast(_outside(bound, kind, not up))  # just inside an open bound: accepted
                assert getattr(get_method(name, wf, **{p["name"]: inside}).params, p["name"]) == inside
            else:
                assert getattr(get_method(name, wf, **{p["name"]: cast(bound)}).params, p["name"]) == bound
            with pytest.raises(ConfigError, match=p["name"]):
                get_method(name, wf, **{p["name"]: cast(_outside(bound, kind, up))})
