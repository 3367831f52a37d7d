"""Bounds of the two side bands: jointly with separate gains, and coherently (dsp.crlb)."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.crlb import coherent_two_band_crlb_s2, delay_crlb_s2, single_path_crlb_s2, two_band_crlb_s2


def test_one_path_two_bands_separate_gains_add_their_information(wf):
    f = wf.active_freqs_hz
    one = single_path_crlb_s2(f, 1.0, 0.1)
    other = single_path_crlb_s2(f, 0.5, 0.1)
    both = two_band_crlb_s2(f, np.array([1e-6]), (np.array([1.0]), np.array([0.5j])), (0.1, 0.1))
    assert both == pytest.approx(1 / (1 / one + 1 / other), rel=1e-9, abs=0)


def test_multipath_joint_bound_no_worse_than_either_band(wf):
    f = wf.active_freqs_hz
    rng = np.random.default_rng(3)
    tau = 1e-6 + np.array([0.0, 20e-9, 55e-9])
    g = [np.exp(2j * np.pi * rng.uniform(size=3)) for _ in range(2)]
    both = two_band_crlb_s2(f, tau, (g[0], g[1]), (0.01, 0.01))
    assert both <= min(delay_crlb_s2(f, tau, g[0], 0.01), delay_crlb_s2(f, tau, g[1], 0.01))


def test_coherent_bound_is_the_closed_form_over_both_frequency_sets(wf):
    """One path: ``1 / (8 pi^2 SNR sum (f - mean)^2)`` over ``-f_sh + f_k`` and ``f_sh + f_k``."""
    f = wf.active_freqs_hz
    both = np.concatenate([f - wf.tag_shift_hz, f + wf.tag_shift_hz])
    expect = 1 / (8 * np.pi**2 * 10.0 * np.sum((both - both.mean()) ** 2))
    got = coherent_two_band_crlb_s2(wf, np.array([1e-6]), np.array([1.0]), 0.1)
    assert got == pytest.approx(expect, rel=1e-6, abs=0)
    rms_ratio = np.std(both) / np.std(f)  # sqrt(f_sh^2 + B_rms^2) / B_rms
    single = single_path_crlb_s2(f, 1.0, 0.1)
    assert np.sqrt(single / got) == pytest.approx(rms_ratio * np.sqrt(2), rel=1e-6, abs=0)
