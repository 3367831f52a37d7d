"""The receiver's timing start-up (dsp/receiver_startup.py) on short seeded captures whose answer
the emulator knows (issue 19, the mutation check: docs/MUTATION.md, session 13).

The receiver tests (tests/test_receiver.py, tests/test_drift.py) run the start-up through the
whole chain and check what comes out seconds later: the loop pulls a misplaced grid in, the
references are refreshed, and the drift check's limit is only met from one side.  Here each
test stops right after the start-up (or the placement after a gap) and checks what it set:

* the window grid: a symbol period of the strongest path starts ``timing_guard_samples`` into
  each window (the guard), from the emulator's truth;
* the first central reference: the mean of ``BOOT_WINDOWS`` windows, so its power is theirs;
* the drift check: the rule of ``_bootstrap_central``'s docstring (the prior ``-cfo / fc`` kept
  unless the measurement differs by more than ``min(drift_check_ppm, max(4 sigma, floor))``,
  the floor ``max(0.05 ppm, 1 % of the prior)``), on measurements handed to it;
* the measurement's standard error ``sigma``: the scatter of the measured drift about the truth;
* after a gap: the grid continues on the timing model when the sample count is right, and is
  placed anew (keeping the rate, the offset restarted) when the count jumped.

Each test names, in its docstring, mutants it kills (ids of ``tests/mutation_run.py --direct``).
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from dsp.alignment import SumPart
from dsp.receiver import Receiver
from dsp.receiver_config import ReceiverConfig
from dsp.receiver_epochs import EpochMaths
from dsp.receiver_startup import STARTUP_WINDOWS
from dsp.references import symbol_from_cfr
from dsp.results import RangingEpoch
from dsp.waveform import SPEED_OF_LIGHT_M_S, WaveformConfig, get_profile
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from tests.conftest import chi2_bounds
from tests.support_ranging import image_rejection

WF = get_profile("default")
N = WF.fft_size  # 1024
GUARD = ReceiverConfig().timing_guard_samples  # 32
BANDS = ("central", "upper")


def _capture(wf: WaveformConfig, duration_s: float, **kw) -> tuple[Emulator, np.ndarray]:
    emu = Emulator(wf, ScenarioConfig(duration_s=duration_s, mode="cw", bands=BANDS, **kw))
    return emu, emu.generate()


def _started(wf: WaveformConfig, x: np.ndarray, rx: Receiver | None = None) -> Receiver:
    """A receiver fed exactly the ``STARTUP_WINDOWS`` windows its start-up waits for (no segment
    is processed yet: one needs ``segment_symbols`` = 480 windows)."""
    rx = rx or Receiver(wf, list(BANDS), config=ReceiverConfig(tag_mode="cw"))
    rx.push(x[:, : STARTUP_WINDOWS * wf.fft_size])
    assert rx.reference_index is not None, "not started with STARTUP_WINDOWS windows"
    assert not rx._history
    return rx


def test_the_grid_puts_the_strongest_path_at_the_guard_under_a_whole_subcarrier_cfo():
    """5.8 GHz at 8 ppm: a CFO of 46.4 kHz, 1.55 subcarriers.  No sample-clock drift, no
    circuitry, no impairments (``ideal``, ``circuitry=False``): the strongest central path is
    the direct one, ``n0 + d`` samples late (``d`` = 20 m / c = 2.05 samples at 30.72 MS/s), so
    a symbol period starts ``GUARD`` samples into the reference window when
    ``reference_index + GUARD - n0`` is ``d`` modulo N, to the integer sample the correlation
    peak picks: within 0.5 (the path at a fractional delay peaks at the nearest integer lag;
    at 30 dB over 8 windows the noise cannot move a peak 0.45 from the midpoint).

    The symbol timing correlates with a Zadoff-Chu symbol, for which a whole-subcarrier shift is
    almost a delay: the CFO must be removed first (removing it twice, with the wrong sign, or
    with ``-3j pi`` or ``-2j / pi`` moved the peak by 1-4 samples; mutants 33-37).  The first
    central reference is the mean of ``BOOT_WINDOWS`` aligned windows, so its power is the
    windows' less ``(1 - 1/32)`` of the noise: 1e-3 at 30 dB; limit 1 % (a reference scaled
    by ``BOOT_WINDOWS`` instead of divided, mutant 143, or weighted by ``|z|`` instead of
    unit-modulus, mutant 136, is off by orders of magnitude; every later use is scale-free).
    The fine CFO: the angle of the sum of the 79 lag products of the 80 windows' projections on
    the known symbol telescopes to (last phase - first phase) / 79, each phase's noise
    ``1 / sqrt(2 SNR K)`` (K = 800 subcarriers, 30 dB): ``fs / (2 pi N) sqrt(1 / (SNR K)) / 79``
    = 0.07 Hz; limit 5 of those, 0.35 Hz (seeds 4-9 gave at most 0.09 Hz).  The known symbol
    ramped at ``-cfo`` instead of ``+cfo`` (mutant 88) correlates a 3.1-subcarrier-shifted
    symbol: 2-7 Hz off on those seeds (2.0 on this one)."""
    wf = WaveformConfig(carrier_freq_hz=5.8e9)
    emu, x = _capture(wf, 0.004, seed=4, lo_ppm=8.0, ideal=True, circuitry=False, snr_central_db=30)
    tr = emu.truth
    assert tr.sample_clock_ppm == 0 and abs(tr.cfo_hz["central"]) > wf.subcarrier_spacing_hz
    rx = _started(wf, x)
    d = tr.tx_rx_distance_m / SPEED_OF_LIGHT_M_S * wf.working_rate_hz
    pos = (rx.reference_index + GUARD - tr.sample_offset - d + N / 2) % N - N / 2
    assert abs(pos) <= 0.5, pos
    assert abs(rx.cfo_hz["central"] - tr.cfo_hz["central"]) < 0.35
    ref = rx._ref["central"]
    w = x[0, rx.reference_index : rx.reference_index + 32 * N].reshape(32, N)
    ratio = np.vdot(ref, ref).real / np.mean(np.sum(np.abs(w) ** 2, axis=1))
    assert abs(ratio - 1) < 0.01, ratio


@pytest.fixture(scope="module")
def tied3():
    """3 ppm tied to the LO (the prior is right): 0.004 s, enough for the start-up."""
    return _capture(WF, 0.004, seed=2, lo_ppm=3.0)


def _decide(x: np.ndarray, offset: float, sigma: float, **cfg) -> tuple[Receiver, float]:
    """Start-up with ``_measure_rate`` handing back ``prior + offset`` and ``sigma``; returns the
    receiver and the measurement it was handed."""
    rx = Receiver(WF, list(BANDS), config=ReceiverConfig(tag_mode="cw", **cfg))
    handed = []

    def measure(block, zz):
        prior = -rx.cfo_hz["central"] / WF.carrier_freq_hz
        handed.append(prior + offset)
        return prior + offset, sigma

    rx._measure_rate = measure
    _started(WF, x, rx)
    return rx, handed[0] if handed else None


@pytest.mark.parametrize(
    ("offset_ppm", "sigma_ppm", "kept"),
    [
        (0.07, 0.001, False),  # floor 0.05 ppm (1 % of 3 ppm is less): mutant 4 (0.1 ppm)
        (-0.04, 0.001, True),  # within the floor: the prior stays, tied (mutant 112)
        (0.6, 0.2, False),  # 4 sigma = 0.8 ppm, capped at drift_check_ppm = 0.5 (mutants 120, 121)
        (0.13, 0.03, False),  # 4 sigma = 0.12 ppm (5 sigma would keep it: mutant 122)
    ],
)
def test_the_drift_check_keeps_the_prior_exactly_within_its_limit(tied3, offset_ppm, sigma_ppm, kept):
    """The rule of ``_bootstrap_central``: the prior ``-cfo / fc`` stands (and the clock is
    taken as tied to the LO) unless the measurement differs from it by more than
    ``min(drift_check_ppm, max(4 sigma, max(0.05 ppm, 1 % of the prior)))``; otherwise the
    measurement is the drift and the clock untied.  The measurement is handed in, so each case
    sits on a chosen side of one term of the limit, at least 0.01 ppm from it."""
    rx, measured = _decide(tied3[1], offset_ppm * 1e-6, sigma_ppm * 1e-6)
    prior = -rx.cfo_hz["central"] / WF.carrier_freq_hz
    assert abs(prior * 1e6 + 3.0) < 0.01  # the CFO is 3 ppm of fc: the floor is 0.05 ppm
    assert rx._tied is kept
    assert rx._timing.prior_rate == (prior if kept else measured)


def test_the_drift_check_keeps_the_prior_at_exactly_its_limit(tied3):
    """``4 sigma`` equal to the difference, to the last bit (a quarter of a float is exact): not
    *more* than the limit, so the prior stands (``>=`` for ``>``, mutant 126)."""
    x = tied3[1]
    rx = Receiver(WF, list(BANDS), config=ReceiverConfig(tag_mode="cw"))

    def measure(block, zz):
        prior = -rx.cfo_hz["central"] / WF.carrier_freq_hz
        measured = prior + 0.2e-6
        return measured, abs(measured - prior) / 4  # 4 sigma: 0.2 ppm, above the floor, below 0.5

    rx._measure_rate = measure
    _started(WF, x, rx)
    assert rx._tied and rx._timing.prior_rate == -rx.cfo_hz["central"] / WF.carrier_freq_hz


def test_without_timing_tracking_the_grid_does_not_drift(tied3):
    """``timing_tracking=False``: no drift is measured or applied (rate 0, the clock not taken
    as tied), whatever the CFO (mutants 129-131: rate 1.0, tied, None)."""
    rx, measured = _decide(tied3[1], 0.0, 0.001e-6, timing_tracking=False)
    assert measured is None  # not measured
    assert rx._timing.prior_rate == 0.0 and rx._tied is False


def test_the_measured_drift_s_standard_error_is_its_scatter():
    """The clock untied from the LO (``ideal``: no drift) with a CFO of -0.45 ppm: the start-up
    measures the drift of 0 over its 80 windows.  Its ``sigma`` is the least-squares standard
    error of the slope (``cov[0, 0]``); with no drift there is no bias (the 1 % bias is
    proportional to the drift), so over 6 seeds ``sum (measured / sigma)**2`` is chi-square with
    6 degrees, within its 1e-6 quantiles (tests/conftest.py).  ``cov[1, 0]`` or ``cov[0, 1]``
    (the slope-intercept covariance, negative here: sigma 0, mutants 187, 188) makes it
    infinite; at low SNR that sigma flipped tied radios to untied (the floor alone is then below
    the measurement's own noise)."""
    z = []
    for seed in range(6):
        _, x = _capture(WF, 0.004, seed=seed, lo_ppm=-0.45, ideal=True)
        rx = Receiver(WF, list(BANDS), config=ReceiverConfig(tag_mode="cw"))
        got = []
        real = rx._measure_rate
        rx._measure_rate = lambda block, zz, real=real, got=got: got.append(real(block, zz)) or got[-1]
        _started(WF, x, rx)
        measured, sigma = got[0]
        assert sigma > 0
        z.append(measured / sigma)
    lo, hi = chi2_bounds(len(z))
    assert lo < float(np.sum(np.square(z))) < hi, z


@pytest.fixture(scope="module")
def drifting():
    """-10 ppm tied to the LO (the grid moves by +0.31 samples a millisecond), 0.06 s."""
    return _capture(WF, 0.06, seed=3, lo_ppm=-10.0)


def _before_gap(x: np.ndarray) -> tuple[Receiver, int]:
    """A receiver fed 700 windows, then a gap of one sample: the windows before it are processed
    (the model updated as it will stand after the gap), and nothing after it yet; returns the
    receiver and the index after that sample."""
    rx = Receiver(WF, list(BANDS), config=ReceiverConfig(tag_mode="cw"))
    a = 700 * N + 123
    rx.push(x[:, :a])
    rx.push(x[:, :0], 1)
    return rx, a + 1


def _grid_point(rx: Receiver, after: int, off: int) -> tuple[int, int]:
    """A nominal grid point ``nom`` (``anchor`` modulo N) about 100,000 samples after
    ``after``, and the index ``off`` samples from its window start ``nom + round(g(nom))``."""
    tm = rx._timing
    nom = after + 100_000 + (tm.anchor - after - 100_000) % N
    return nom, nom + round(float(tm.at(nom))) + off


@pytest.mark.parametrize("off", [-2, 0, 1])
def test_after_a_gap_the_grid_continues_on_the_timing_model(drifting, off):
    """A gap whose sample count is right: the symbol timing of the 9 windows after it (all it
    reads, so 9 are enough: mutants 17, 19) agrees with the model (within 3 samples), so the
    model is kept as it was (anchor, offset, rate) and the grid continues on it: the next
    window is the model's first one starting at or after the first sample after the gap,
    ``nom`` or ``nom + N`` (mutants 54-76 either left the grid, restarted it or skipped a
    window; here ``g`` is about 3 samples at the gap's end, so ``nom - round(g)`` misses).
    Then the first segment after the gap is on the truth within the 0.05-sample tracking
    target (tests/test_drift.py: the model carries across a gap)."""
    emu, x = drifting
    rx, end = _before_gap(x)
    nom, first = _grid_point(rx, end, off)
    tm = rx._timing
    state = (tm.anchor, tm.offset, tm.rate, tm.prior_rate)
    assert round(float(tm.at(nom))) >= 2  # so that nom - round(g) differs
    rx.push(x[:, first : first + 9 * N], first - end)
    assert rx._next_nom is not None, "9 windows after a gap did not place the grid"
    assert (tm.anchor, tm.offset, tm.rate, tm.prior_rate) == state
    assert rx._next_nom == (nom if off <= 0 else nom + N)
    rx.push(x[:, first + 9 * N : first + 600 * N])
    seg = rx._history[0]  # the first segment after the gap
    tr = emu.truth
    s0 = rx.reference_index
    phi0 = s0 - float(tr.illumination_delay_samples(s0))
    err = (seg.starts + seg.f - tr.illumination_delay_samples(seg.starts) - phi0 + N / 2) % N - N / 2
    assert np.all(np.abs(err) < 0.05), err[[0, -1]]


def test_a_jump_in_the_sample_count_restarts_the_grid_keeping_the_rate(drifting):
    """The gap reported 300 samples longer than it was (a jump of the sample count): the content
    after it is where the model puts it plus 300, far beyond the 3-sample check, so the grid is
    placed anew where the symbol timing puts it, the model's anchor moved there, its offset
    restarted at 0 and its rate kept (mutants 80-82: offset 1.0 or None, no grid).  The new grid
    point is the old one moved by the 300 samples, to the symbol timing's integer sample and the
    model's rounding: within 2."""
    _, x = drifting
    rx, end = _before_gap(x)
    nom, first = _grid_point(rx, end, 0)
    tm = rx._timing
    g = float(tm.at(nom))
    rate = (tm.rate, tm.prior_rate)
    rx.push(x[:, first : first + 9 * N], first - end + 300)
    assert rx._next_nom is not None and tm.anchor == rx._next_nom
    assert tm.offset == 0.0 and (tm.rate, tm.prior_rate) == rate
    assert abs(rx._next_nom - (nom + g + 300)) <= 2


# ----- CW epochs (dsp/receiver_epochs.py) ---------------------------------------------------


@pytest.fixture(scope="module")
def cw():
    """CW at -4 ppm (the grid steps forward, see docs/MUTATION.md session 13 for the step back),
    the upper band at 20 dB: acquired within the first segments, 0.2 s (four epochs)."""
    return _capture(WF, 0.2, seed=6, lo_ppm=-4.0, snr_upper_db=20)


def _cw_run(x: np.ndarray, delta_hz: float = 0.0, chunk: int | None = None, **cfg):
    """CW receiver over ``x``; the upper band's CFO is set ``delta_hz`` off right after its
    acquisition (before any window is projected with it).  Returns the receiver, the acquired
    CFO, the epochs, after each push the windows not yet in an epoch, and each epoch's first
    and last window starts."""
    rx = Receiver(WF, list(BANDS), config=ReceiverConfig(tag_mode="cw", **cfg))
    real = rx._acquire_step
    acquired = {}

    def step(band, seg):
        real(band, seg)
        if rx._ref[band] is not None and band not in acquired:
            acquired[band] = rx.cfo_hz[band]
            rx.cfo_hz[band] += delta_hz

    rx._acquire_step = step
    spans = []
    real_epoch = rx._epoch

    def epoch(lo, hi, weights, time_s):
        starts = np.concatenate([s.starts for s in rx._history])
        spans.append((int(starts[lo]), int(starts[hi - 1])))
        return real_epoch(lo, hi, weights, time_s)

    rx._epoch = epoch
    out, waiting = [], []
    step_n = chunk or x.shape[1]
    for i in range(0, x.shape[1], step_n):
        out += rx.push(x[:, i : i + step_n])
        if rx._epoch_from is not None:
            starts = np.concatenate([s.starts for s in rx._history])
            waiting.append(starts.size - int(np.searchsorted(starts, rx._epoch_from)))
    out += rx.flush()
    return rx, acquired.get("upper"), [e for e in out if isinstance(e, RangingEpoch)], waiting, spans


def test_a_cw_epoch_removes_the_residual_frequency_and_halves_it_in_the_cfo(cw):
    """The upper band's CFO set 3.5 Hz off at acquisition (within the 2 x 4 Hz the demodulation
    searches).  Each CW epoch finds the residual rotation ``f`` of the tag samples, weights the
    windows by ``exp(-j 2 pi (ph + f t))`` (so the sum stays coherent) and moves the CFO by
    ``f / 2``.  So the first epoch publishes the band's CFO error halved: ``(acq + 3.5 -
    truth) / 2`` (3.62 Hz to 1.81 Hz) within 0.05 Hz (the residual's estimate over 1500
    windows at 20 dB is good to about 1e-3 Hz; the 0.12 Hz acquisition error is in both
    terms); ``- f / 2`` or ``+ 1.5 f`` give 5.4 or -1.8 Hz (mutants 59, 60).  And the epoch is as
    coherent as without the offset: the published upper-band SNR within 0.3 dB of the run
    without it, on the same samples (the residual's estimate leaves < 0.1 rad over the epoch);
    weighting by ``+f`` (mutant 54) leaves 7.2 Hz over 49 ms, 2.2 rad: a loss of 1.8 dB.  And
    the SNR is the band's (the weights unit-modulus, ``conj(g) / |g|``)."""
    emu, x = cw
    _, _, ref_epochs, _, _ = _cw_run(x)
    _, acq, epochs, _, _ = _cw_run(x, 3.5)
    truth = emu.truth.cfo_hz["upper"]
    first = epochs[0]
    assert first.cfo_hz["upper"] - truth == pytest.approx((acq + 3.5 - truth) / 2, abs=0.05)
    assert abs(first.snr_db["upper"] - ref_epochs[0].snr_db["upper"]) < 0.3
    # the published SNR is the band's: within 0.5 dB less the IQ image's and DC's floor
    # (tests/test_receiver.py's check; 0.2 dB at 20 dB); the weights scaled by |g| or 1 / |g|**3
    # (|g| about 0.01: mutants 56, 57) published 100 dB or -60 dB
    sc = emu.sc
    floor = image_rejection(sc) + 10 ** (sc.dc_offset_dbc / 10)
    loss = 10 * np.log10(1 + 10 ** (sc.snr_db["upper"] / 10) * floor)
    for e in epochs:
        assert sc.snr_db["upper"] - loss - 0.5 <= e.snr_db["upper"] <= sc.snr_db["upper"] + 0.5


def test_cw_epochs_start_at_their_first_window_and_come_out_once_complete(cw):
    """The first CW epoch starts at the first window of the grid (the reference window: the
    history is still whole when the band is acquired at 20 dB) and its ``time_s`` is that
    window's start (mutants 7, 62, 63: the second window, ``st[1]``, ``st[0] * fs``); each epoch
    holds ``epoch_symbols`` windows but the last (at least half of them, the final flush), and
    starts at the window after the previous epoch's last (mutants 65, 66 overlapped them).
    With epochs of two segments (960 windows) fed a segment at a time, an epoch comes out of
    the push that completes it: fewer than 960 windows wait after any push (mutants 14, 20: an
    epoch of exactly 960 waited for one more window, or every epoch for the flush)."""
    _, x = cw
    rx, _, epochs, _, spans = _cw_run(x)
    assert round(epochs[0].time_s * WF.working_rate_hz) == rx.reference_index == spans[0][0]
    # the next epoch starts at the next window: N later, or N + 1 where the grid steps forward
    assert all(b[0] - a[1] in (N, N + 1) for a, b in itertools.pairwise(spans)), spans
    assert [e.n_symbols for e in epochs[:-1]] == [1500] * (len(epochs) - 1)
    assert 750 <= epochs[-1].n_symbols <= 1500
    _, _, epochs, waiting, _ = _cw_run(x, chunk=480 * N, epoch_symbols=960)
    assert len(epochs) >= 5 and waiting and max(waiting) < 960, waiting


def test_cw_epochs_leave_no_window_out_where_the_grid_steps_back():
    """At +10 ppm the window grid moves 0.01 samples a window (one sample about every 100
    windows) and can step back at an epoch's edge: the next window then starts at ``st[-1] + N
    - 1``.  Epochs of 50 windows over 0.3 s (about 180 edges): the epochs tile the grid, each
    starting at the window after the previous one's last (``N - 1``, ``N`` or ``N + 1`` later).
    The next epoch was searched from ``st[-1] + N``, which skipped that window (4 of the edges
    of this run: seed 3; found by the session-13 mutation check)."""
    _, x = _capture(WF, 0.3, seed=3, lo_ppm=10.0, snr_upper_db=20)
    _, _, epochs, _, spans = _cw_run(x, epoch_symbols=50)
    assert len(epochs) > 150
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(spans)]
    assert set(gaps) <= {N - 1, N, N + 1} and N - 1 in gaps, sorted(set(gaps))


def test_no_cw_epoch_without_an_acquired_side_band():
    """The upper band at -40 dB is not acquired in 0.05 s: the flush publishes no epoch (mutant
    3: ``and`` for ``or`` ranged on no side band)."""
    _, x = _capture(WF, 0.05, seed=1, snr_upper_db=-40)
    rx, acq, epochs, _, _ = _cw_run(x)
    assert acq is None and not rx.acquired["upper"] and not epochs


def test_window_sums_take_every_window_of_every_segment(cw):
    """``_window_sum`` cuts a range of history windows at the segments' edges (here 480 windows
    each): with a one-hot weight on any window of a range, before, at or after an edge, the sum
    is that window alone, aligned (``SumPart`` over that one window, the alignment's own
    result: float32 equality to 1e-6 of the window's scale); mutant 90 (``max(lo - pos, 1)``)
    dropped the first window of every segment after the first.  And the central reference
    after the epochs is the mean of an epoch's windows: its power is theirs (less the noise,
    1e-3 at 30 dB; limit 1 %; mutants 110, 111 scaled it by ``(hi - lo)**2`` or
    ``(hi - lo) / (hi + lo)``)."""
    _, x = cw
    rx, *_ = _cw_run(x)
    segs = rx._history
    b = segs[0].starts.size
    assert len(segs) >= 2 and all(s.block is not None for s in segs[:2])
    cfo = rx.cfo_hz["central"]

    def alone(m: int) -> np.ndarray:
        seg, j = (segs[0], m) if m < b else (segs[1], m - b)
        part = SumPart(seg.block, rx.c0, j, j + 1, np.ones(1, complex), seg.f[j : j + 1])
        return rx._align.window_sum([part], cfo)

    for lo, hi in ((0, 2), (b - 1, b + 1), (b, b + 2)):
        for m in range(lo, hi):
            w = np.zeros(hi - lo, complex)
            w[m - lo] = 1.0
            want = alone(m)
            got = rx._window_sum(rx.c0, lo, hi, w)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())
    ref = rx._ref["central"]
    s0 = int(segs[-1].starts[0])
    w = x[0, s0 : s0 + 32 * N].reshape(32, N)
    assert abs(np.vdot(ref, ref).real / np.mean(np.sum(np.abs(w) ** 2, axis=1)) - 1) < 0.01


@pytest.mark.parametrize(
    ("lo", "hi", "kept"),
    [(0, 4, True), (8, 12, True), (3, 5, False), (7, 8, False), (0, 12, False), (4, 8, False)],
)
def test_an_epoch_needs_the_raw_windows_of_every_segment_it_spans(lo, hi, kept):
    """Three segments of 4 windows, the middle one light (look-back only, no raw windows): a
    range of windows is kept exactly when it overlaps no light segment; the ranges ending at the
    light one's first window or starting after its last are kept (mutants 70, 73, 75: a count
    from 1, ``pos <= hi``, ``pos + m >= lo``)."""
    segs = [SimpleNamespace(starts=np.arange(4), block=b) for b in ("raw", None, "raw")]
    rx = SimpleNamespace(_history=segs)
    assert EpochMaths._windows_kept(rx, lo, hi) is kept


def test_a_side_band_reference_is_the_running_mean_of_its_estimates_then_forgets():
    """``_refresh_reference``'s rule (its docstring): each estimate, projected on the tap window,
    turned into a symbol at the band's CFO and given the reference's phase and norm, is folded in
    with weight ``1 / (k + 1)`` for the k-th (a running mean, acquisition's counted as one), down
    to ``1 - reference_forget`` = 5 % from the 19th on.  Estimates of random taps at random
    scales and phases (the receiver's own have the reference's phase already: mutants 126-128,
    which rotate by the wrong angle, would need a phase to see); 24 refreshes, each compared with
    the rule applied to the reference as stored (complex64: 1e-6 of its norm).  Mutants 136,
    139, 141 (``k + 2``, ``k * (k + 1)``, ``k / (k + 2)``) and 145, 146, 148 (the weights or the
    scale inverted) fold in other weights."""
    rx = Receiver(WF, ["central", "lower", "upper"])
    rng = np.random.default_rng(5)
    k_sub = WF.active_subcarriers.size
    cfo = 1234.5
    rx.cfo_hz["upper"] = cfo

    def estimate() -> np.ndarray:
        gain = rng.uniform(0.5, 3.0) * np.exp(2j * np.pi * rng.uniform())
        return gain * (rng.normal(size=k_sub) + 1j * rng.normal(size=k_sub))

    rx._install("upper", symbol_from_cfr(WF, rx._space.denoise(estimate()), cfo))
    rx._refreshes["upper"] = 0
    for k in range(1, 25):
        old = rx._ref["upper"].astype(complex)
        cfr = estimate()
        s = symbol_from_cfr(WF, rx._space.denoise(cfr), cfo)
        s = s * np.exp(-1j * np.angle(np.vdot(old, s))) * np.linalg.norm(old) / np.linalg.norm(s)
        a = min(0.95, k / (k + 1))
        rx._refresh_reference("upper", cfr)
        assert rx._refreshes["upper"] == k
        want = a * old + (1 - a) * s
        np.testing.assert_allclose(rx._ref["upper"], want, rtol=0, atol=1e-6 * np.linalg.norm(old))
