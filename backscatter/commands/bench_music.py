"""Latency of one MUSIC first-path estimate, for the ``bench`` command."""

from __future__ import annotations

import statistics
import time

import numpy as np

from dsp.channel import Paths
from dsp.ranging.music import Music
from dsp.waveform import WaveformConfig

BENCH_SUBCARRIERS = 800
TARGET_LATENCY_S = 0.05


def _waveform_with_800_subcarriers(wf: WaveformConfig) -> WaveformConfig:
    """``wf`` itself when it has 800 active subcarriers, else ``-400..400`` without DC on its FFT."""
    if len(wf.active_subcarriers) == BENCH_SUBCARRIERS:
        return wf
    half = BENCH_SUBCARRIERS // 2
    if wf.fft_size // 2 <= half:
        raise ValueError(
            f"music_latency: fft_size {wf.fft_size} cannot hold {BENCH_SUBCARRIERS} active subcarriers"
        )
    return wf.replace(subcarrier_min=-half, subcarrier_max=half, null_dc=True)


def music_latency(wf: WaveformConfig, repeats: int = 30, seed: int = 0) -> dict:
    """Median wall time of one :class:`Music` estimate on an 800-subcarrier CFR ``[subcarrier]``.

    The CFR is a seeded five-path channel (LoS and four reflections, 9 m apart,
    2 dB weaker each) at 20 dB SNR per subcarrier.  One warm-up call precedes
    the ``repeats`` timed ones.  Returns seconds (median, min) and the setup.
    """
    if repeats < 1:
        raise ValueError(f"music_latency: repeats must be at least 1, got {repeats}")
    wf = _waveform_with_800_subcarriers(wf)
    rng = np.random.default_rng(seed)
    n_paths = 5
    gains = 10 ** (-0.1 * np.arange(n_paths)) * np.exp(2j * np.pi * rng.uniform(size=n_paths))
    paths = Paths(30.0 + 9.0 * np.arange(n_paths), gains)
    h = paths.cfr(wf.active_freqs_hz, wf.carrier_freq_hz)
    sigma = np.sqrt(np.mean(np.abs(h) ** 2) / 10 ** (20 / 10) / 2)
    cfr = h + sigma * (rng.standard_normal(h.size) + 1j * rng.standard_normal(h.size))
    method = Music(wf)
    est = method.estimate(cfr)  # warm-up (FFT plans, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        method.first_path_delay_s(cfr)
        times.append(time.perf_counter() - t0)
    return {
        "subcarriers": int(cfr.size),
        "subvector_len": method.subvector_len,
        "cir_fft_size": wf.cir_fft_size,
        "model_order": est.order,
        "repeats": repeats,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "target_s": TARGET_LATENCY_S,
    }
