"""dsp/epoch.py against its own definitions (issue 19, the mutation check; docs/MUTATION.md session 10).

A ranging epoch is built from noise-free window sums of single-path CFRs, and ranged with a
stand-in method whose delay is exact on such a CFR (the phase step between adjacent subcarriers),
so every published number of the epoch (CFR, CIR, SNR, per-band delay and range, the combined
range and its standard deviation) can be checked against the formula the docstrings state:
eq. (77)-(79) and the propagation of the bands' delay deviations through the weighted mean.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest

from dsp.cir import cfr_to_cir
from dsp.epoch import _range_std_m, band_snr, method_for, range_methods, ranging_epoch
from dsp.ranging import REGISTRY, RangingMethod
from dsp.ranging.params import MethodParams, param
from dsp.references import symbol_from_cfr
from dsp.waveform import SPEED_OF_LIGHT_M_S as C

STD_S = 1e-9  # the stand-in's delay deviation at unit CFR level

# The windows are complex64 (symbol_from_cfr): each sample's parts are rounded to 2**-24 of
# themselves, and the FFT back to the subcarriers keeps that relative size (Parseval); ``CFR_RTOL``
# allows 16 times it on the largest subcarrier.  A relative error ``e`` on each subcarrier is at
# most a phase error ``e`` rad, so the phase step between two subcarriers is off by at most
# ``2 e`` and the delay by ``2 e / (2 pi df)`` (``DELAY_ABS_S``, 1.1e-11 s, 3 mm); a power is off
# by ``2 e`` relative (``SNR_ABS_DB``).
CFR_RTOL = 1e-6
SNR_ABS_DB = 10 * np.log10(1 + 2 * CFR_RTOL)


def _delay_bound_s(wf) -> float:
    return 2 * CFR_RTOL / (2 * np.pi * wf.subcarrier_spacing_hz)


def _slope_delay_s(wf, cfrs: np.ndarray) -> float:
    """Delay of a single path from the phase step between adjacent subcarriers of every band,
    ``[band, subcarrier]`` (exact on a noise-free path within half a cycle of ``df``)."""
    adj = np.flatnonzero(np.diff(wf.active_subcarriers) == 1)
    z = np.sum(cfrs[:, adj + 1] * np.conj(cfrs[:, adj]))
    return float(-np.angle(z) / (2 * np.pi * wf.subcarrier_spacing_hz))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.abs(x) ** 2)))


@dataclass(frozen=True)
class _SlopeParams(MethodParams):
    method = "slope"
    scale: float = param(1.0, "multiplies the stand-in's deviation", "(0, inf)")


class _Slope(RangingMethod):
    """Stand-in method: ``_slope_delay_s`` and a deviation ``scale STD_S / rms(cfr)``."""

    Params = _SlopeParams

    def first_path_delay_s(self, cfr, cir):
        return _slope_delay_s(self.wf, cfr[None])

    def delay_and_std_s(self, cfr, cir):
        return _slope_delay_s(self.wf, cfr[None]), self.params.scale * STD_S / _rms(cfr)


class _JointSlope(_Slope):
    joint_bands = True

    def joint_delay_and_std_s(self, cfrs):
        return _slope_delay_s(self.wf, cfrs), self.params.scale * STD_S / _rms(cfrs)


class _NoStd(_Slope):
    def delay_and_std_s(self, cfr, cir):
        return _slope_delay_s(self.wf, cfr[None]), float("nan")


# named after the class statements: a class with a name registers itself (RangingMethod's
# __init_subclass__); these go into REGISTRY only for the tests, by monkeypatch
_Slope.name, _JointSlope.name, _NoStd.name = "slope", "joint_slope", "no_std"


@pytest.fixture
def stand_ins(monkeypatch):
    for cls in (_Slope, _JointSlope, _NoStd):
        monkeypatch.setitem(REGISTRY, cls.name, cls)


# the scene: band -> (amplitude, phase, delay after calibration s, effective symbols, noise var,
# CFO Hz); d_cal per side band; the calibration of each band a gain and a delay of its own
D0_M = 41.7
D_CAL_M = {"lower": 3.2, "upper": -1.9}
BANDS = {
    "central": (2.0, 0.4, 97e-9, 40.0, 0.05, 1500.0),
    "lower": (0.3, -1.1, 215e-9 + D_CAL_M["lower"] / C, 25.5, 0.004, -700.0),
    "upper": (0.5, 2.5, 223e-9 + D_CAL_M["upper"] / C, 12.25, 0.02, 300.0),
}
CAL = {"central": (0.8, 13e-9), "lower": (1.7, -21e-9), "upper": (0.6, 6e-9)}


def _cal(wf, band):
    g, t = CAL[band]
    return g * np.exp(-2j * np.pi * wf.active_freqs_hz * t)


def _inputs(wf, calibrated=True):
    """Window sums, norms, CFOs, noise variances and the CFRs before calibration of ``BANDS``."""
    f = wf.active_freqs_hz
    sums, norms, cfo, nv, raw = {}, {}, {}, {}, {}
    for b, (a, ph, tau, n, v, fo) in BANDS.items():
        t_raw = tau + (CAL[b][1] if calibrated else 0.0)
        h = a * np.exp(1j * ph - 2j * np.pi * f * t_raw) * (CAL[b][0] if calibrated else 1.0)
        raw[b] = h
        sums[b] = n * symbol_from_cfr(wf, h, fo)  # sums / norms is the window of CFR h
        norms[b], cfo[b], nv[b] = n, fo, v
    return sums, norms, cfo, nv, raw


def _epoch(wf, methods, calibrated=True, **kw):
    sums, norms, cfo, nv, raw = _inputs(wf, calibrated)
    cal = {b: _cal(wf, b) for b in BANDS} if calibrated else None
    kw.setdefault("d_cal_m", D_CAL_M)
    args = (wf, 1.25, 300, sums, norms, cfo, nv, methods, 0.3)
    return ranging_epoch(*args, kw.pop("d0", D0_M), cal, **kw), raw


def test_band_snr_is_the_signal_power_less_the_estimates_noise_over_the_noise():
    """Docstring: an averaged CFR of ``n`` symbols holds noise ``v / n``; its mean power less that,
    over ``v``.  A flat CFR of power ``p``: ``(p - v / n) / v``.  A CFR weaker than its noise is
    floored (positive), so that its SNR in dB exists."""
    h = 0.7 * np.exp(1j * np.linspace(0, 5, 300))
    assert band_snr(h, 0.02, 8.0) == pytest.approx((0.49 - 0.02 / 8.0) / 0.02, rel=1e-12)
    weak = band_snr(2 * h, 3.0, 0.5)  # 1.96 - 3.0 / 0.5 < 0
    assert 0 < weak < 1e-20 and np.isfinite(10 * np.log10(weak))


def test_an_epoch_publishes_the_calibrated_cfr_its_cir_and_the_bands_snr(wf, stand_ins):
    """Each band's CFR is its window sum over its norm taken back to the subcarriers at its CFO,
    divided by its calibration (a gain and a delay); the CIR is that CFR's; the SNR is
    ``band_snr`` of the CFR before calibration with the band's norm as its effective symbols
    (docstring of ``ranging_epoch``)."""
    e, raw = _epoch(wf, ("slope",))
    assert set(e.cfr) == set(e.cir) == set(e.snr_db) == set(BANDS)
    assert e.time_s == 1.25 and e.n_symbols == 300
    assert e.cfo_hz == {b: v[5] for b, v in BANDS.items()}
    for b, (a, ph, tau, n, v, _) in BANDS.items():
        want = a * np.exp(1j * ph - 2j * np.pi * wf.active_freqs_hz * tau)
        np.testing.assert_allclose(e.cfr[b], want, rtol=0, atol=CFR_RTOL * np.abs(raw[b]).max() / CAL[b][0])
        np.testing.assert_array_equal(e.cir[b], cfr_to_cir(e.cfr[b], wf))
        power = (a * CAL[b][0]) ** 2  # before calibration
        assert e.snr_db[b] == pytest.approx(10 * np.log10((power - v / n) / v), abs=SNR_ABS_DB)


def test_an_uncalibrated_epoch_keeps_the_measured_cfr(wf, stand_ins):
    e, raw = _epoch(wf, ("slope",), calibrated=False)
    for b in BANDS:
        np.testing.assert_allclose(e.cfr[b], raw[b], rtol=0, atol=CFR_RTOL * np.abs(raw[b]).max())
    partial = {"lower": _cal(wf, "lower")}  # a calibration for one band divides that band only
    sums, norms, cfo, nv, raw = _inputs(wf, calibrated=False)
    e2 = ranging_epoch(wf, 0.0, 300, sums, norms, cfo, nv, ("slope",), 0.3, D0_M, partial, D_CAL_M)
    np.testing.assert_allclose(e2.cfr["lower"], e.cfr["lower"] / partial["lower"], rtol=1e-12)
    np.testing.assert_array_equal(e2.cfr["upper"], e.cfr["upper"])


def _expected_ranges(e, name, d0, d_cal):
    """Eq. (77)-(79) from the epoch's own delays and SNRs: per band ``mod(d0 + c (t_u - t_0) -
    d_cal_u, c / df)``, combined with weights ``rho_u``, the bands' linear SNRs."""
    t = e.delay_s[name]
    sides = [b for b in e.cfr if b != "central"]
    per = {b: d0 + C * (t[b] - t["central"]) - d_cal[b] for b in sides}
    rho = {b: 10 ** (e.snr_db[b] / 10) for b in sides}
    combined = sum(rho[b] * per[b] for b in sides) / sum(rho.values())
    return per, rho, combined


def test_per_band_and_combined_ranges_and_the_range_std_are_eq_77_to_79(wf, stand_ins):
    """Separate bands (``joint_bands`` off): each band's delay is the method's on its calibrated
    CFR (so the true delay within ``DELAY_ABS_S``), each side band's range is eq. (77)-(78)
    (``d0 + c (t_u - t_0) - d_cal_u``: no wrap at these delays) and the combined range the
    SNR-weighted mean, eq. (79).  The range's deviation is that of the weighted mean of
    independent errors, ``c sqrt(sum_u rho_u^2 s_u^2 / (sum_u rho_u)^2 + s_0^2)``, with the
    method's per-band deviations ``s_b``; a method parameter (``scale``) reaches the method."""
    bound = _delay_bound_s(wf)
    for scale, params in ((1.0, None), (2.5, {"slope": {"scale": 2.5}})):
        e, _ = _epoch(wf, ("slope",), method_params=params)
        t = e.delay_s["slope"]
        for b, v in BANDS.items():
            assert t[b] == pytest.approx(_slope_delay_s(wf, e.cfr[b][None]), rel=1e-12, abs=0)
            assert abs(t[b] - v[2]) <= bound
        per, rho, combined = _expected_ranges(e, "slope", D0_M, D_CAL_M)
        assert e.range_band_m["slope"] == pytest.approx(per, rel=1e-12)
        truth = {b: D0_M + C * (BANDS[b][2] - BANDS["central"][2]) - D_CAL_M[b] for b in per}
        assert e.range_band_m["slope"] == pytest.approx(truth, abs=2 * C * bound)
        assert e.range_m["slope"] == pytest.approx(combined, rel=1e-12)
        s = {b: scale * STD_S / _rms(e.cfr[b]) for b in BANDS}
        side_var = sum((rho[b] * s[b]) ** 2 for b in per) / sum(rho.values()) ** 2
        assert e.range_std_m["slope"] == pytest.approx(C * np.sqrt(side_var + s["central"] ** 2), rel=1e-12)
        assert e.job is None


def test_a_joint_method_fits_the_side_bands_with_their_calibration_distances_moved_out(wf, stand_ins):
    """``joint_bands``: the side bands' CFRs, each with ``d_cal_u / c`` of delay taken out, are
    fitted together; each band gets the common delay plus its own ``d_cal_u / c`` back, so both
    ranges are ``d0 + c (t - t_0)`` and the deviation counts once: ``c sqrt(s^2 + s_0^2)``.  The
    scene's side bands have different delays (215 and 223 ns after ``d_cal``): the common fit is
    their power-weighted phase step, which the stand-in computes on the aligned CFRs."""
    e, _ = _epoch(wf, ("joint_slope",))
    t = e.delay_s["joint_slope"]
    f = wf.active_freqs_hz
    aligned = np.stack([e.cfr[b] * np.exp(2j * np.pi * f * D_CAL_M[b] / C) for b in ("lower", "upper")])
    common = _slope_delay_s(wf, aligned)
    assert BANDS["lower"][2] - D_CAL_M["lower"] / C < common < BANDS["upper"][2] - D_CAL_M["upper"] / C
    for b in ("lower", "upper"):
        assert t[b] == pytest.approx(common + D_CAL_M[b] / C, rel=1e-9)
        assert e.range_band_m["joint_slope"][b] == pytest.approx(D0_M + C * (common - t["central"]), rel=1e-9)
    assert t["central"] == pytest.approx(_slope_delay_s(wf, e.cfr["central"][None]), rel=1e-12, abs=0)
    s, s0 = STD_S / _rms(aligned), STD_S / _rms(e.cfr["central"])
    assert e.range_std_m["joint_slope"] == pytest.approx(C * np.hypot(s, s0), rel=1e-12)


def test_one_side_band_or_no_deviation(wf, stand_ins):
    """A joint method with one side band fits it alone (the same delay as a separate fit), and
    its deviation is that band's; a method without a deviation publishes none; no distance
    given is distance 0; a deferred epoch carries a job that completes it to the same numbers, and
    the outcome's ``busy_s`` is the wall time of the methods (within that of the call)."""
    sums, norms, cfo, nv, _ = _inputs(wf, calibrated=False)
    one = {
        k: {b: d[b] for b in ("central", "upper")}
        for k, d in (("s", sums), ("n", norms), ("c", cfo), ("v", nv))
    }
    e = ranging_epoch(
        wf, 0.0, 300, one["s"], one["n"], one["c"], one["v"], ("joint_slope", "slope", "no_std"), 0.3, None
    )
    assert e.delay_s["joint_slope"] == e.delay_s["slope"]
    assert e.range_std_m["joint_slope"] == e.range_std_m["slope"]
    s = {b: STD_S / _rms(e.cfr[b]) for b in ("central", "upper")}
    assert e.range_std_m["slope"] == pytest.approx(C * np.hypot(s["upper"], s["central"]), rel=1e-12)
    assert "no_std" not in e.range_std_m and set(e.range_m) == {"joint_slope", "slope", "no_std"}
    t = e.delay_s["no_std"]
    assert e.range_m["no_std"] == pytest.approx(C * (t["upper"] - t["central"]), rel=1e-12)  # d0 = d_cal = 0
    d = ranging_epoch(wf, 0.0, 300, one["s"], one["n"], one["c"], one["v"], ("slope",), 0.3, None, defer=True)
    assert d.job is not None and d.range_m == {} and d.range_std_m == {}
    start = time.perf_counter()
    outcome = range_methods(d.job)
    wall = time.perf_counter() - start
    assert 0 <= outcome.busy_s <= wall  # the seconds the methods took (the worker's busy time)
    outcome.fill(d)
    assert d.job is None
    assert d.range_m == {"slope": e.range_m["slope"]} and d.range_std_m == {"slope": e.range_std_m["slope"]}
    assert d.delay_s == {"slope": e.delay_s["slope"]} and d.range_band_m == {"slope": e.range_band_m["slope"]}


def test_range_std_weights_clip_negative_and_fall_back_to_equal():
    """``_range_std_m``'s weights are the reliabilities clipped at zero, equal when all are zero;
    any positive scale (a sum under one, weights under one) is a valid weighting."""
    std = {"central": 2e-9, "lower": 3e-9, "upper": 5e-9}
    sides = ["lower", "upper"]

    def want(wl, wu):
        return C * np.sqrt(((wl * 3e-9) ** 2 + (wu * 5e-9) ** 2) / (wl + wu) ** 2 + 4e-18)

    for rel in ({"lower": 0.25, "upper": 0.5}, {"lower": 4.0, "upper": 0.5}, {"lower": 30.0, "upper": 70.0}):
        got = _range_std_m(std, sides, rel, joint=False)
        assert got == pytest.approx(want(rel["lower"], rel["upper"]), rel=1e-12)
    assert _range_std_m(std, sides, {"lower": 0.0, "upper": 0.0}, joint=False) == pytest.approx(
        want(1, 1), rel=1e-12
    )
    assert _range_std_m(std, sides, {"lower": -3.0, "upper": 2.0}, joint=False) == pytest.approx(
        want(0, 1), rel=1e-12
    )
    assert _range_std_m(std, sides, {"lower": 1.0, "upper": 1.0}, joint=True) == pytest.approx(
        C * np.hypot(3e-9, 2e-9), rel=1e-12
    )
    assert np.isnan(
        _range_std_m({"lower": 3e-9, "upper": 5e-9}, sides, {"lower": 1.0, "upper": 1.0}, joint=False)
    )


def test_method_for_defaults_the_threshold_and_passes_the_parameters(wf):
    """``threshold`` defaults to the receiver's ``ir_threshold`` where a method has one; given
    parameters win; an unknown name is refused; instances are shared per parameters."""
    assert method_for("ir_first", wf, 0.37).params.threshold == 0.37
    assert method_for("ir_first", wf, 0.37, {"threshold": 0.5}).params.threshold == 0.5
    m = method_for("ir_first_interp", wf, 0.2, {"oversample": 8})
    assert (m.params.threshold, m.params.oversample) == (0.2, 8)
    assert method_for("ir_first_interp", wf, 0.2, {"oversample": 8}) is m
    with pytest.raises(ValueError, match=r"^unknown ranging method 'nope'; known: \["):
        method_for("nope", wf, 0.3)
