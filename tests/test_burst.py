"""Burst mode's packet search (dsp/burst.py) in the parts that can be checked alone: the stronger-
preamble rule, the skip after an idle-test rejection and the idle test's window selection, on
numbers and samples built here (the search as a whole: tests/test_receiver.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dsp.burst import BurstSearch
from dsp.waveform import WaveformConfig

WF = WaveformConfig()
PERIOD = WF.working_rate_hz / WF.tag_symbol_rate_baud  # 15,360 samples a tag symbol


def test_a_stronger_preamble_is_the_first_candidate_above_1_25_times_within_the_span():
    """``k + 1 + i`` for the first ``i`` with ``stat[k + 1 + i] > 1.25 stat[k]``, ``i < span``:
    a value exactly 1.25 times is not stronger, nor is one past the span, nor ``k`` itself."""
    stat = np.array([50.0, 8.0, 10.0, 12.5, 9.0, 12.6, 13.0, 40.0])
    assert BurstSearch._stronger_preamble(stat, 2, 5) == 5  # 12.5 is not above 12.5
    assert BurstSearch._stronger_preamble(stat, 2, 2) is None  # 12.6 lies 3 past k
    assert BurstSearch._stronger_preamble(stat, 2, 3) == 5
    assert BurstSearch._stronger_preamble(stat, 6, 1) == 7  # 40 > 16.25, the last entry
    assert BurstSearch._stronger_preamble(stat, 7, 4) is None  # nothing after the end
    assert BurstSearch._stronger_preamble(stat, 0, 7) is None  # 50 before nothing larger


def test_after_an_idle_rejection_the_search_skips_the_idle_time_less_the_checked_symbols():
    """Default profile: 100 ms bursts of a 62.5 ms packet leave 37.5 ms idle, 75 tag symbols; the
    idle test looked at ``IDLE_SYMBOLS`` (16) symbols after a one-symbol guard, so the next start
    is at least ``75 - 16 - 1 - 1`` (margin) = 57 symbols on.  An idle time shorter than the
    checked symbols gives no skip (0, not a negative one)."""
    rx = SimpleNamespace(wf=WF)
    assert BurstSearch._idle_samples(rx, PERIOD) == pytest.approx(57 * PERIOD, rel=1e-12)
    short = SimpleNamespace(wf=WF.replace(burst_period_s=0.0625 + 17 / 2000))  # 17 idle symbols
    assert BurstSearch._idle_samples(short, PERIOD) == 0.0


N = WF.fft_size
T0 = 300 * N  # a packet start on a window boundary, 20 tag symbols into the history


def _idle_before(on: list[tuple[float, float]], wf=WF, first_window: int = 0, gain=1.0, freq_hz=0.0) -> bool:
    """``_idle_before`` for a packet at ``T0`` on noise-free samples of one band, the tag on (+1,
    ``gain``, turning at ``freq_hz`` from sample 0) over the sample intervals ``on`` and off
    elsewhere, the packet's fit (``dem``) giving that gain and frequency; noise variance 1."""
    starts = np.arange(first_window, 400) * N
    z = np.zeros((1, starts.size), complex)
    for a, b in on:  # the fraction of each window the tag is on
        z[0] += np.clip(np.minimum(starts + N, b) - np.maximum(starts, a), 0, None) / N
    z *= gain * np.exp(2j * np.pi * freq_hz * (starts + N / 2) / wf.working_rate_hz)
    rx = SimpleNamespace(wf=wf, n=N, fs=wf.working_rate_hz)
    dem = SimpleNamespace(gains=np.array([gain], complex), freq_offset_hz=np.array([freq_hz]))
    return BurstSearch._idle_before(rx, starts, z, np.ones(1), float(T0), PERIOD, dem)


def test_the_idle_test_reads_the_16_symbols_before_a_one_symbol_guard():
    """Noise-free, so the idle statistic is the data fraction: the tag on over ``k`` of the 16
    symbols checked gives ``k / 16`` of data's power, not idle from 4 (``IDLE_DATA_FRACTION``
    0.25).  On over the 5 symbols before the guard: not idle.  On over the guard symbol
    ``[T0 - T, T0)`` alone (where a fine-timing error can put the packet's first symbol): idle.
    On over the 13 symbols just before the checked ones, ``[T0 - 30 T, T0 - 17 T)``: idle."""
    p = PERIOD
    assert not _idle_before([(T0 - 6 * p, T0 - p), (T0, T0 + 125 * p)])
    assert _idle_before([(T0 - p, T0 + 125 * p)])
    assert _idle_before([(T0 - 30 * p, T0 - 17 * p), (T0, T0 + 125 * p)])
    assert not _idle_before([(T0 - 30 * p, T0 - 12 * p)])  # the first 5 checked symbols
    # the same with a complex gain and an e Hz (2.72) residual frequency, which the test removes at each
    # window's centre time: still coherent, not idle
    assert not _idle_before([(T0 - 6 * p, T0 - p)], gain=0.7 * np.exp(2.0j), freq_hz=np.e)


def test_the_idle_test_is_skipped_with_fewer_than_four_symbols_to_check():
    """The tag on throughout (a packet's data before the candidate): not idle when 16 symbols are
    there; idle (no test) when the history starts 4 symbols before ``T0`` (3 before the guard),
    or when the idle time between packets holds 5 symbols (``5 - 2`` to check); tested again at
    6 (4 symbols checked, all on)."""
    p = PERIOD
    on = [(0.0, T0 + 125 * p)]
    assert not _idle_before(on)
    assert _idle_before(on, first_window=T0 // N - 60)  # 60 windows: 4 symbols
    assert not _idle_before(on, first_window=T0 // N - 75)  # 5 symbols: 4 checked
    for idle_symbols, idle in ((5, True), (6, False)):
        wf = WF.replace(burst_period_s=0.0625 + (idle_symbols + 0.5) / 2000)
        assert _idle_before(on, wf=wf) is idle
