"""The independent oracle (``tests/oracle``) against analytic facts, and its independence.

These tests could fail: each compares the oracle's samples with a closed form computed here
(the DFT of a window, the direct sum over subcarriers, the drift of the delay), not with
the oracle's own intermediate values.
"""

from __future__ import annotations

import ast
import cmath
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize

from tests.oracle.bound import compound_paths, delay_crlb_s2, single_path_crlb_s2
from tests.oracle.channel import band_cfr
from tests.oracle.scenario import HARMONIC, Scenario, plan, samples
from tests.oracle.synth import stretched
from tests.oracle.waveform import SPEED_OF_LIGHT_M_S, Numerology, symbol_bins

ORACLE = Path(__file__).resolve().parent / "oracle"
NUM = Numerology()
N = NUM.fft_size
MULTIPATH = {
    "tx_rx": ((20.0, 1.0 + 0j), (33.5, cmath.rect(0.6, 1.0)), (61.0, cmath.rect(0.3, -2.0))),
    "tx_tag": ((12.0, 1.0 + 0j), (30.0, cmath.rect(0.5, 2.5))),
    "tag_rx": ((15.0, 1.0 + 0j), (19.0, cmath.rect(0.7, -0.5)), (44.0, cmath.rect(0.4, 0.3))),
}


def test_the_oracle_imports_nothing_from_the_project():
    """numpy, scipy, h5py, the standard library and its own modules: nothing else."""
    allowed = {"numpy", "scipy", "h5py"} | set(sys.stdlib_module_names)
    for path in sorted(ORACLE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                names = [node.module or ""]
            else:
                continue
            for name in names:
                own = name == "tests.oracle" or name.startswith("tests.oracle.")
                assert own or name.split(".")[0] in allowed, f"{path.name} imports {name}"
    assert len(list(ORACLE.glob("*.py"))) >= 7


@pytest.mark.parametrize("band", ["central", "lower", "upper"])
def test_a_window_at_known_alignment_is_x_times_h_of_the_path_list(band):
    """No drift, integer timing offset, no CFO: the unitary DFT of the window that starts at
    ``tau0`` is ``A e^{j theta} g X[k] H[k]``, ``H`` summed here from the path list."""
    sc = Scenario(mode="cw", timing_offset_samples=417.0, **MULTIPATH)
    tr = plan(sc)
    c = sc.bands.index(band)
    win = samples(sc, tr, 417 + 5 * N, N, None)[c]  # five periods later: the same window
    y = np.fft.fft(win) / np.sqrt(N)
    k = NUM.subcarriers
    f = k * NUM.spacing_hz

    def h(link, center_hz):
        return sum(a * np.exp(-2j * np.pi * (center_hz + f) * d / SPEED_OF_LIGHT_M_S) for d, a in link)

    if band == "central":
        expected = h(sc.tx_rx, NUM.carrier_freq_hz)
    else:
        expected = HARMONIC * h(sc.tx_tag, NUM.carrier_freq_hz) * h(sc.tag_rx, NUM.band_center_hz(band))
    expected = expected * symbol_bins(NUM)[k % N] * tr.scale[band] * np.exp(1j * tr.phase_rad[band])
    np.testing.assert_allclose(y[k % N], expected, rtol=0, atol=1e-9 * np.abs(expected).max())
    off = np.setdiff1d(np.arange(N), k % N)
    assert np.abs(y[off]).max() < 1e-9 * np.abs(expected).max()  # nothing outside the active set


def test_the_stretched_waveform_equals_the_direct_sum_over_subcarriers():
    """``s(n (1 + delta) - tau0)`` against ``N**-0.5 sum_k Y[k] e^{j 2 pi k u / N}`` evaluated
    directly at random samples 2 s in, at +-5 ppm: agreement to 1e-8 of the rms (float32 is 6e-8).
    The direct sum reduces ``u`` modulo ``N`` exactly first (``k`` is an integer)."""
    rng = np.random.default_rng(3)
    y = symbol_bins(NUM) * (rng.standard_normal(N) + 1j * rng.standard_normal(N))
    k = np.fft.fftfreq(N, 1.0 / N)
    for delta in (5e-6, -5e-6, 0.0):
        start, count = 61_000_003, 200_000
        s = stretched(y, start, count, delta, 123.4)
        idx = rng.integers(0, count, 64)
        u = np.mod(start + idx, N) + (start + idx) * delta - 123.4
        direct = np.exp(2j * np.pi * np.outer(u, k) / N) @ y / np.sqrt(N)
        assert np.abs(s[idx] - direct).max() < 1e-8 * np.sqrt(np.mean(np.abs(direct) ** 2))


def fit_window(window: np.ndarray, y: np.ndarray, delta: float, cfo_hz: float) -> tuple[float, float]:
    """``(a, phi)`` of ``window[m] = e^{j (phi + 2 pi cfo m / fs)} s(a + m (1 + delta))``, ``s`` summed here
    directly over the subcarriers of ``y``: ``a`` maximises the correlation magnitude (a coarse
    guess from the phase step between neighbouring subcarriers, then a bounded 1-D search)."""
    k = np.fft.fftfreq(N, 1.0 / N)
    act = NUM.subcarriers
    ratio = np.fft.fft(window)[act % N] / y[act % N]
    pairs = np.diff(act) == 1  # not across the unused DC
    guess = np.angle(np.vdot(ratio[:-1][pairs], ratio[1:][pairs])) * N / (2 * np.pi)
    m = np.arange(N)
    turn = np.exp(2j * np.pi * cfo_hz * m / NUM.working_rate_hz)  # the CFO inside the window

    def corr(a: float) -> complex:
        model = np.exp(2j * np.pi * np.outer(a + m * (1 + delta), k) / N) @ y / np.sqrt(N) * turn
        return np.vdot(model, window)

    best = scipy.optimize.minimize_scalar(
        lambda a: -abs(corr(a)), bounds=(guess - 0.5, guess + 0.5), method="bounded", options={"xatol": 1e-9}
    )
    return float(best.x), float(np.angle(corr(best.x)))


def test_windows_one_second_apart_drift_by_delta_fs_samples():
    """Sample clock tied to the LO at +2.3 ppm: the illumination runs ``delta fs`` = 70.656
    samples ahead per second (SYSTEM.md section 3) and the carrier turns by ``fc delta`` =
    2104.5 Hz, half a cycle after one second.  The fit is exact for a noiseless window, so the
    limits are numerical (1e-6 samples, 1e-6 rad)."""
    delta = 2.3e-6
    sc = Scenario(mode="cw", bands=("central", "upper"), clock_offset_ppm=delta * 1e6)
    tr = plan(sc)
    fs = NUM.working_rate_hz
    one_s = int(fs)  # 30000 whole periods
    (a0, p0), (a1, p1) = (
        fit_window(samples(sc, tr, n, N, None)[0], tr.spectrum["central"], delta, tr.cfo_hz["central"])
        for n in (0, one_s)
    )
    assert a0 == pytest.approx(-sc.timing_offset_samples, abs=1e-6)
    assert a1 - a0 == pytest.approx(delta * fs, abs=1e-6)
    assert abs(np.angle(np.exp(1j * (p1 - p0 - np.pi)))) < 1e-6
    assert tr.cfo_hz["central"] == pytest.approx(2104.5, rel=1e-12, abs=0)


def test_tag_symbols_last_fs_over_rb_one_plus_eps_samples_and_idle_is_zero():
    """Burst mode at +100 ppm tag clock: the side band's magnitude follows the packet (on for
    ``125 T`` samples, T = fs / (Rb (1 + eps))), zero before it; BPSK flips follow the bits."""
    sc = Scenario(bands=("central", "upper"), tag_clock_ppm=100.0, first_packet_s=0.001, duration_s=0.08)
    tr = plan(sc)
    period = NUM.working_rate_hz / (NUM.tag_symbol_rate_baud * (1 + 100e-6))
    assert tr.tag_symbol_samples == pytest.approx(period, rel=1e-12, abs=0)
    start = tr.packet_start_sample[0]
    n0, n1 = int(start) - 2 * N, int(start + 3 * period)
    x = samples(sc, tr, n0, n1 - n0, None)[1]
    ref = samples(Scenario(mode="cw", bands=sc.bands, tag_clock_ppm=100.0), plan(sc), n0, n1 - n0, None)[1]
    level = np.real(x / ref)  # the tag's BPSK level, exactly, sample by sample
    n = n0 + np.arange(n1 - n0)
    sym = 1.0 - 2.0 * tr.packet_bits[0]
    expected = np.where(n < start, 0.0, sym[np.clip(np.floor((n - start) / period).astype(int), 0, 124)])
    np.testing.assert_allclose(level, expected, atol=1e-9)


def test_crlb_of_one_path_is_the_closed_form_and_nuisance_paths_only_raise_it():
    f = NUM.freqs_hz
    closed = single_path_crlb_s2(f, 0.01, 1875)
    fisher = delay_crlb_s2(f, [40e-9], [cmath.rect(1.0, 0.7)], 100.0, 1875)  # snr 1 / 100
    assert fisher == pytest.approx(closed, rel=1e-9, abs=0)
    # 4 cm at -20 dB per subcarrier and one 62.5 ms packet (1875 symbols): the figure the tests use
    assert np.sqrt(closed) * SPEED_OF_LIGHT_M_S == pytest.approx(0.0397, abs=5e-4)
    tau, g = compound_paths(MULTIPATH["tx_tag"], NUM.carrier_freq_hz, MULTIPATH["tag_rx"], 960e6)
    h = band_cfr(NUM, "upper", MULTIPATH["tx_rx"], MULTIPATH["tx_tag"], MULTIPATH["tag_rx"])
    np.testing.assert_allclose(np.exp(-2j * np.pi * np.outer(f, tau)) @ g, h, atol=1e-12)
    assert delay_crlb_s2(f, tau, g, 100.0, 1875) > delay_crlb_s2(f, tau[:1], g[:1], 100.0, 1875)


def test_the_capture_follows_format_md_and_the_reader_gets_the_truth_back(tmp_path):
    """A short drifting capture through ``captures.reader``: bands, rate, waveform, and the
    ``/truth`` fields FORMAT.md lists (the sample clock's ``sample_clock_ppm`` included)."""
    from captures.reader import open_capture
    from tests.oracle.scenario import write_capture

    sc = Scenario(duration_s=0.08, first_packet_s=0.002, clock_offset_ppm=3.0, tag_clock_ppm=-40.0)
    tr = write_capture(sc, tmp_path / "c.h5")
    with open_capture(tmp_path / "c.h5") as cap:
        assert cap.bands == list(sc.bands) and cap.capture_rate_hz == NUM.working_rate_hz
        assert cap.n_samples == round(0.08 * NUM.working_rate_hz)
        assert cap.waveform.zc_root == 1 and cap.waveform.burst_period_s == NUM.burst_period_s
        got = cap.truth()
        iq = cap.read(0, N)
    assert got.sample_clock_ppm == 3.0 and got.tag_clock_ppm == -40.0
    assert got.lo_ppm == pytest.approx(3.0, rel=1e-12, abs=0)  # nu_0 / fc: the LO offset tied to the clock
    assert got.range_true_m == tr.range_true_m and got.tx_rx_distance_m == 20.0
    np.testing.assert_array_equal(got.packet_bits, tr.packet_bits)
    np.testing.assert_array_equal(got.packet_start_sample, [0.002 * NUM.working_rate_hz])
    assert got.cfo_hz == pytest.approx(tr.cfo_hz) and got.tag_symbol_samples == tr.tag_symbol_samples
    # ci16: the first window read back equals the synthesis to the quantisation step 1/32767
    want = samples(sc, tr, 0, N, None)
    assert np.abs(iq - want).max() < 6 * np.sqrt(max(tr.noise_var.values())) + 1 / 32767
