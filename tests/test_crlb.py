"""Cramer-Rao bounds against closed forms, limits, identities and bad input; the ``crlb`` command."""

import argparse
import json
import math

import numpy as np
import pytest

from backscatter.commands import crlb_cmd
from backscatter.output import CliError
from dsp.channel import Paths
from dsp.cir import analytic_compound_cfr
from dsp.crlb import (
    RangeBound,
    backscatter_crlb_s2,
    bistatic_range_crlb_m2,
    compound_model,
    delay_crlb_s2,
    direct_crlb_s2,
    fisher_information,
    merge_coincident,
    model_cfr,
    range_bound,
    single_path_crlb_s2,
    stochastic_range_bound,
)
from dsp.waveform import SPEED_OF_LIGHT_M_S
from sdr.emulator.geometry import draw_paths
from sdr.emulator.scenario import ScenarioConfig

C = SPEED_OF_LIGHT_M_S


def closed_form_s2(freqs_hz, gain, noise_var, n_symbols):
    """One path, unknown complex gain: the phase absorbs the mean frequency, so
    ``J_tau_tau - J_tau_phi^2 / J_phi_phi = (8 pi^2 abs(a)^2 M / sigma^2) sum (f - f_mean)^2``."""
    f = np.asarray(freqs_hz, float)
    snr = abs(gain) ** 2 * n_symbols / noise_var
    return 1.0 / (8 * math.pi**2 * snr * np.sum((f - f.mean()) ** 2))


@pytest.fixture(scope="module")
def lopsided(wf):
    """Subcarriers -100..400 without DC: the mean frequency is far from zero."""
    return wf.replace(subcarrier_min=-100)


@pytest.mark.parametrize("which", ["default", "lopsided"])
def test_single_path_matches_the_closed_form(wf, lopsided, which):
    w = wf if which == "default" else lopsided
    f = w.active_freqs_hz
    gain, noise_var, n_symbols = 0.3 - 0.7j, 0.02, 12
    expected = closed_form_s2(f, gain, noise_var, n_symbols)
    for delay_s in (0.0, 1.234e-7, 21.5e-6):
        # QR of a well-conditioned 1600 x 3 matrix: relative error near machine precision, far inside 1 %
        assert delay_crlb_s2(f, [delay_s], [gain], noise_var, n_symbols) == pytest.approx(
            expected, rel=1e-9, abs=0
        )
    assert single_path_crlb_s2(f, gain, noise_var, n_symbols) == pytest.approx(expected, rel=1e-12, abs=0)
    # the centring matters where the band is lopsided: the uncentred sum would be more than 1 % off
    uncentred = 1.0 / (8 * math.pi**2 * abs(gain) ** 2 * n_symbols / noise_var * np.sum(f**2))
    assert (abs(uncentred / expected - 1) > 0.01) == (which == "lopsided")


def test_fisher_information_matches_a_numerical_jacobian(wf):
    """``J = (2 M / sigma^2) Re(D^H D)`` with ``D`` by central differences of the model CFR."""
    f = wf.active_freqs_hz
    tau = np.array([1.0e-7, 1.3e-7, 2.2e-7])
    a = np.array([1.0, 0.5j, -0.3 + 0.2j])
    noise_var, m = 0.1, 4
    theta = np.concatenate([tau, a.real, a.imag])

    def mu(th):
        return model_cfr(f, th[:3], th[3:6] + 1j * th[6:])

    steps = np.r_[np.full(3, 1e-12), np.full(6, 1e-6)]
    d = np.stack(
        [(mu(theta + h * e) - mu(theta - h * e)) / (2 * h) for h, e in zip(steps, np.eye(9), strict=True)],
        axis=1,
    )
    j_num = 2 * m / noise_var * (d.conj().T @ d).real
    j = fisher_information(f, tau, a, noise_var, m)
    np.testing.assert_allclose(j, j_num, rtol=1e-5, atol=1e-6 * np.abs(j_num).max())


def test_bound_grows_as_a_nlos_path_approaches_the_los(wf):
    f = wf.active_freqs_hz
    cell_s = 1 / wf.occupied_bandwidth_hz
    noise_var = 1e-3
    single = single_path_crlb_s2(f, 1.0, noise_var)
    seps = [20.0, 8.0, 4.0, 2.0, 1.0, 0.5, 0.25]
    bounds = [delay_crlb_s2(f, [1e-6, 1e-6 + s * cell_s], [1.0, 0.8j], noise_var) for s in seps]
    # nuisance parameters never lower the bound (the LoS block of J is unchanged), and the closer the worse
    assert all(b >= single * (1 - 1e-9) for b in bounds)
    assert all(np.diff(bounds) > 0)
    assert bounds[0] < 1.05 * single  # far apart: the paths barely couple
    assert bounds[-1] > 10 * single  # a quarter resolution cell: hard
    # coincident delays and gains in phase: moving either delay changes the CFR alike, tau_0 is lost
    assert delay_crlb_s2(f, [1e-6, 1e-6], [1.0, 0.8], noise_var) == math.inf
    # a third path can only add to the bound at fixed noise
    three = delay_crlb_s2(f, [1e-6, 1e-6 + cell_s, 1e-6 + 1.7 * cell_s], [1.0, 0.8j, 0.6], noise_var)
    assert three > bounds[seps.index(1.0)]


def test_bound_falls_tenfold_per_10_db(wf):
    f = wf.active_freqs_hz
    cell_s = 1 / wf.occupied_bandwidth_hz
    tau = 2e-7 + cell_s * np.array([0.0, 1.3, 2.9])
    a = np.array([1.0, -0.6j, 0.4 + 0.1j])
    b = delay_crlb_s2(f, tau, a, 1e-2)
    assert delay_crlb_s2(f, tau, a, 1e-3) == pytest.approx(b / 10, rel=1e-9, abs=0)
    assert delay_crlb_s2(f, tau, a, 1e-2, n_symbols=10) == pytest.approx(b / 10, rel=1e-9, abs=0)
    los, tag, back = (
        Paths([20.0, 31.0], [1, 0.5j]),
        Paths([9.0, 17.0], [1, 0.3]),
        Paths([14.0, 26.0], [1, -0.4]),
    )
    r20, r30 = range_bound(wf, los, tag, back, 20, 20), range_bound(wf, los, tag, back, 30, 30)
    assert r30.direct_s2 == pytest.approx(r20.direct_s2 / 10, rel=1e-9, abs=0)
    assert r30.backscatter_s2 == pytest.approx(r20.backscatter_s2 / 10, rel=1e-9, abs=0)
    assert r30.bistatic_rmse_m == pytest.approx(r20.bistatic_rmse_m / math.sqrt(10), rel=1e-9, abs=0)


def test_compound_channel_model(wf):
    tx_tag = Paths([9.0, 17.5], [0.5, 0.2j])
    tag_rx = Paths([14.0, 21.0, 30.0], [0.4, -0.1, 0.05 + 0.05j])
    for band in ("lower", "upper"):
        tau, a = compound_model(tx_tag, tag_rx, wf, band)
        assert tau.size == 6 and tau[0] == pytest.approx((9.0 + 14.0) / C, abs=0)
        mu = model_cfr(wf.active_freqs_hz, tau, a)
        np.testing.assert_allclose(
            mu, analytic_compound_cfr(tx_tag, tag_rx, wf, band), rtol=1e-10, atol=1e-12
        )
    # LoS-only links: one compound path of gain a1 a2, i.e. the closed form
    los1, los2 = Paths([9.0], [0.5]), Paths([14.0], [0.2j])
    got = backscatter_crlb_s2(los1, los2, wf, 1e-4, n_symbols=3)
    assert got == pytest.approx(closed_form_s2(wf.active_freqs_hz, 0.5 * 0.2, 1e-4, 3), rel=1e-9, abs=0)


def test_coincident_compound_paths_merge(wf):
    """Symmetric links give two compound paths at the same delay: one path with the summed gain."""
    tx_tag, tag_rx = Paths([10.0, 15.0], [1.0, 0.5]), Paths([10.0, 15.0], [1.0, 0.5j])
    tau, a = compound_model(tx_tag, tag_rx, wf, "upper")
    tol = 1e-6 / wf.occupied_bandwidth_hz
    t_m, a_m = merge_coincident(tau, a, tol)
    assert t_m.size == 3 and t_m[0] == tau[0]
    assert a_m[1] == pytest.approx(a[1] + a[2])
    bound = backscatter_crlb_s2(tx_tag, tag_rx, wf, 1e-3)
    assert math.isfinite(bound)
    assert bound == pytest.approx(delay_crlb_s2(wf.active_freqs_hz, t_m, a_m, 1e-3), rel=1e-12, abs=0)
    # an NLoS path without gain carries no information and is dropped
    t_z, a_z = merge_coincident([1e-7, 2e-7, 3e-7], [1.0, 0.0, 0.5], tol)
    np.testing.assert_array_equal(t_z, [1e-7, 3e-7])
    np.testing.assert_array_equal(a_z, [1.0, 0.5])


def test_bistatic_bound_sums_the_two_variances(wf):
    assert bistatic_range_crlb_m2(2e-20, 3e-20) == pytest.approx(C**2 * 5e-20, rel=1e-15, abs=0)
    rb = RangeBound(2e-20, 3e-20)
    assert rb.bistatic_rmse_m**2 == pytest.approx(
        rb.direct_rmse_m**2 + rb.backscatter_rmse_m**2, rel=1e-12, abs=0
    )
    f = wf.active_freqs_hz
    assert direct_crlb_s2(Paths([20.0], [0.5j]), wf, 1e-3, 2) == pytest.approx(
        closed_form_s2(f, 0.5, 1e-3, 2), rel=1e-9, abs=0
    )
    tx_rx, tx_tag, tag_rx = Paths([20.0], [1.0]), Paths([9.0], [1.0]), Paths([14.0], [1.0])
    r = range_bound(wf, tx_rx, tx_tag, tag_rx, 25.0, 5.0, n_symbols=7)
    # LoS only: abs(a)^2 / sigma^2 is the band's SNR
    assert r.direct_s2 == pytest.approx(closed_form_s2(f, 1.0, 10**-2.5, 7), rel=1e-9, abs=0)
    assert r.backscatter_s2 == pytest.approx(closed_form_s2(f, 1.0, 10**-0.5, 7), rel=1e-9, abs=0)


def test_stochastic_bound(wf):
    f = wf.active_freqs_hz
    # LoS only: every trial has abs(a)^2 / sigma^2 = SNR, so the average is the closed form
    sc0 = ScenarioConfig(n_nlos=0)
    r0 = stochastic_range_bound(wf, lambda rng: draw_paths(sc0, wf, rng)[:3], 5, 1, 30.0, 10.0)
    assert r0.direct_s2 == pytest.approx(closed_form_s2(f, 1.0, 1e-3, 1), rel=1e-9, abs=0)
    assert r0.backscatter_s2 == pytest.approx(closed_form_s2(f, 1.0, 1e-1, 1), rel=1e-9, abs=0)
    # the running QR equals inverting the averaged Fisher information (well-conditioned channels)
    fixed = [
        (Paths([20.0, 35.0], [1, 0.5j]), Paths([9.0, 30.0], [1, 0.3]), Paths([14.0, 40.0], [1, -0.4])),
        (Paths([20.0, 41.0], [1, -0.2]), Paths([11.0, 25.0], [1, 0.6j]), Paths([12.0, 33.0], [1, 0.2])),
    ]
    cycle = iter(fixed * 2)
    r = stochastic_range_bound(wf, lambda rng: next(cycle), 4, 0, 30.0, 30.0)
    j_avg = 0
    for tx_rx, _, _ in fixed:
        a0 = tx_rx.gains * np.exp(-2j * np.pi * wf.carrier_freq_hz * tx_rx.delays_s)
        var = np.mean(np.abs(tx_rx.cfr(f, wf.carrier_freq_hz)) ** 2) / 1e3
        j_avg = j_avg + fisher_information(f, tx_rx.delays_s, a0, var) / 2
    assert r.direct_s2 == pytest.approx(np.linalg.inv(j_avg)[0, 0], rel=1e-6, abs=0)
    # seeded: the same seed gives the same bound, another seed another one
    sc = ScenarioConfig(n_nlos=2)

    def draw(rng):
        return draw_paths(sc, wf, rng)[:3]

    a, b = (stochastic_range_bound(wf, draw, 4, s, 30.0, 30.0) for s in (3, 3))
    assert a == b
    assert stochastic_range_bound(wf, draw, 4, 4, 30.0, 30.0) != a
    assert math.isfinite(a.bistatic_rmse_m) and a.bistatic_rmse_m > 0


def test_bad_input_raises_value_error(wf):
    f = wf.active_freqs_hz
    with pytest.raises(ValueError, match=r"delays_s .* and gains .* must be equal"):
        delay_crlb_s2(f, [1e-7, 2e-7], [1.0], 1e-3)
    with pytest.raises(ValueError, match="finite"):
        delay_crlb_s2(f, [np.nan], [1.0], 1e-3)
    with pytest.raises(ValueError, match="freqs_hz contains NaN"):
        delay_crlb_s2(np.r_[f[:-1], np.nan], [1e-7], [1.0], 1e-3)
    with pytest.raises(ValueError, match="two distinct frequencies"):
        delay_crlb_s2(np.full(8, 1e6), [1e-7], [1.0], 1e-3)
    with pytest.raises(ValueError, match="noise_var"):
        delay_crlb_s2(f, [1e-7], [1.0], 0.0)
    with pytest.raises(ValueError, match="n_symbols"):
        delay_crlb_s2(f, [1e-7], [1.0], 1e-3, n_symbols=0)
    with pytest.raises(ValueError, match="line-of-sight gain"):
        delay_crlb_s2(f, [1e-7, 2e-7], [0.0, 1.0], 1e-3)
    with pytest.raises(ValueError, match="unidentifiable"):
        delay_crlb_s2(f[:10], np.arange(7) * 1e-7, np.ones(7), 1e-3)  # 21 unknowns, 20 observations
    with pytest.raises(ValueError, match="band"):
        compound_model(Paths([1.0], [1.0]), Paths([1.0], [1.0]), wf, "central")
    with pytest.raises(ValueError, match="non-negative variance"):
        bistatic_range_crlb_m2(float("nan"), 1.0)
    with pytest.raises(ValueError, match="n_trials"):
        stochastic_range_bound(wf, lambda rng: None, 0, 0, 30.0, 30.0)
    with pytest.raises(ValueError, match="line-of-sight gain"):
        direct_crlb_s2(Paths([20.0], [0.0]), wf, 1e-3)
    with pytest.raises(ValueError, match="no power"):
        range_bound(wf, Paths([20.0], [0.0]), Paths([9.0], [1.0]), Paths([14.0], [1.0]), 30.0, 30.0)


# ----- the command ------------------------------------------------------------------------------
def run_cli(argv):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    crlb_cmd.register(sub)
    args = p.parse_args(["crlb", *argv])
    return args.func(args)


def test_cli_text_and_json(wf, tmp_path, capsys):
    out = run_cli([])
    text = capsys.readouterr().out
    assert "single path (closed form)" in text and "stochastic" not in text
    assert out["stochastic"] is None
    scen = tmp_path / "los.json"
    scen.write_text(
        json.dumps(
            {
                "paths_tx_rx": [[20.0, 1.0, 0.0]],
                "paths_tx_tag": [[9.0, 0.5, 0.0]],
                "paths_tag_rx": [[14.0, 0.0, 0.2]],
                "snr_central_db": 20.0,
            }
        )
    )
    run_cli(["--scenario", str(scen), "--snr-db", "10", "--symbols", "4", "--band", "upper", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert res["band"] == "upper" and res["snr_db"] == {"central": 20.0, "upper": 10.0}
    assert res["scenario"]["paths_per_channel"] == [1, 1, 1]
    f = wf.active_freqs_hz
    direct_m = C * math.sqrt(closed_form_s2(f, 1.0, 1e-2, 4))
    back_m = C * math.sqrt(closed_form_s2(f, 1.0, 1e-1, 4))
    for key in ("bound_m", "single_path_m"):
        assert res[key]["direct_m"] == pytest.approx(direct_m, rel=1e-9, abs=0)
        assert res[key]["backscatter_m"] == pytest.approx(back_m, rel=1e-9, abs=0)
        assert res[key]["bistatic_m"] == pytest.approx(math.hypot(direct_m, back_m), rel=1e-9, abs=0)


def test_cli_stochastic(capsys):
    out = run_cli(["--paths", "2", "--trials", "3", "--seed", "5"])
    text = capsys.readouterr().out
    assert "stochastic R-CRLB (2 NLoS, 3 trials)" in text
    st = out["stochastic"]
    assert st["trials"] == 3 and st["n_nlos"] == 2 and st["seed"] == 5
    assert st["bistatic_m"] == pytest.approx(
        math.hypot(st["direct_m"], st["backscatter_m"]), rel=1e-12, abs=0
    )
    assert run_cli(["--paths", "2", "--seed", "5"])["stochastic"]["trials"] == crlb_cmd.DEFAULT_TRIALS


def test_cli_errors(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(CliError, match="cannot read scenario JSON"):
        run_cli(["--scenario", str(missing)])
    scen = tmp_path / "explicit.json"
    rows = [[20.0, 1.0, 0.0]]
    scen.write_text(json.dumps({"paths_tx_rx": rows, "paths_tx_tag": rows, "paths_tag_rx": rows}))
    with pytest.raises(CliError, match="geometric scenario"):
        run_cli(["--scenario", str(scen), "--trials", "2"])
    with pytest.raises(CliError, match="--symbols"):
        run_cli(["--symbols", "0"])
    with pytest.raises(CliError, match="--trials"):
        run_cli(["--trials", "0"])
    with pytest.raises(CliError, match="n_nlos"):
        run_cli(["--paths", "-1"])
