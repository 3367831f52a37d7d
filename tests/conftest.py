"""Shared fixtures: the seeded emulator is the test oracle."""

from __future__ import annotations

import os

# one BLAS thread, before numpy loads (as backscatter/__init__.py does for the CLI): oversubscribed
# BLAS threads on a 2-core machine make small products several times slower
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pytest

from dsp.waveform import WaveformConfig, get_profile
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig


@pytest.fixture(scope="session")
def wf() -> WaveformConfig:
    return get_profile("default")


def known_timing_cfr(emu: Emulator, iq: np.ndarray, band: str) -> np.ndarray:
    """Least-squares CFR ``[subcarrier]`` of one band at the true timing and CFO.

    Undoes the emulator's sample offset (drifting with the sample clock: each window at
    its own true delay, ``truth.illumination_delay_samples`` at the window's centre), CFO,
    band phase, scale and (side bands) the tag's first harmonic (its duty cycle's), so it estimates
    ``truth.cfr[band]``.
    """
    wf, tr = emu.wf, emu.truth
    n = wf.fft_size
    c = list(emu.sc.bands).index(band)
    m = iq.shape[1] // n
    t = np.arange(m * n)
    r = iq[c, : m * n] * np.exp(-2j * np.pi * tr.cfo_hz[band] * t / wf.sample_rate_hz)
    y = np.fft.fft(r.reshape(m, n), axis=1)[:, wf.active_bins] / np.sqrt(n)  # [window, subcarrier]
    k = wf.active_subcarriers
    delay = tr.illumination_delay_samples(np.arange(m) * n + (n - 1) / 2)  # [window]
    h = np.mean(y * np.exp(2j * np.pi * np.outer(delay, k) / n), axis=0) / wf.zadoff_chu
    h *= np.exp(-1j * tr.phase_rad[band]) / tr.scale[band]
    return h / tr.first_harmonic(band) if band != "central" else h


def emulate(wf: WaveformConfig, **kw) -> tuple[Emulator, np.ndarray]:
    emu = Emulator(wf, ScenarioConfig(**kw))
    return emu, emu.generate()
