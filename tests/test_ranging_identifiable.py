"""The ranging sweep's split by identifiability (experiments.ranging_bounds.identifiable_table)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp.waveform import SPEED_OF_LIGHT_M_S, get_profile
from experiments.ranging_bounds import identifiable_limit_m, identifiable_table


def test_the_limit_is_a_tenth_of_a_resolution_cell():
    wf = get_profile("default")
    assert identifiable_limit_m(wf) == 0.1 * SPEED_OF_LIGHT_M_S / wf.occupied_bandwidth_hz


def test_only_scenarios_below_the_limit_count():
    rows = [
        {"n_nlos": 2, "attenuation_db": a, "scenario": s, "err_m1_m": e, "err_m2_m": 2 * e}
        for a in (12.0, 16.0)
        for s, e in ((0, 0.3), (1, 9.0), (2, -0.4), (3, 7.0))
    ]
    bounds = np.array([[0.5, 5.0, 0.1, math.inf], [0.5, 0.2, 3.0, math.inf]])  # [attenuation, scenario]
    table = identifiable_table(rows, {"crlb/p2/product_m": bounds}, (2, 4), (12.0, 16.0), ("m1", "m2"), 1.25)
    assert [t["attenuation_db"] for t in table] == [12.0, 16.0]  # 4 NLoS has no bounds: no rows
    first, second = table
    assert (first["scenarios"], first["of"]) == (2, 4)
    assert first["rmse_m"]["m1"] == pytest.approx(np.sqrt((0.3**2 + 0.4**2) / 2), rel=1e-12, abs=0)
    assert first["rmse_m"]["m2"] == pytest.approx(np.sqrt(((0.6) ** 2 + 0.8**2) / 2), rel=1e-12, abs=0)
    assert first["bound_m"] == np.median([0.5, 0.1])
    assert second["scenarios"] == 2  # scenarios 0 and 1 at 16 dB
    assert second["rmse_m"]["m1"] == pytest.approx(np.sqrt((0.3**2 + 9.0**2) / 2), rel=1e-12, abs=0)


def test_no_identifiable_scenario_gives_nan():
    rows = [{"n_nlos": 8, "attenuation_db": 12.0, "scenario": 0, "err_m1_m": 1.0}]
    (t,) = identifiable_table(
        rows, {"crlb/p8/product_m": np.array([[math.inf]])}, (8,), (12.0,), ("m1",), 1.25
    )
    assert t["scenarios"] == 0 and math.isnan(t["rmse_m"]["m1"]) and math.isnan(t["bound_m"])
