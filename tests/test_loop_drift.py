"""A loop whose sample-clock drift slides the illumination by whole OFDM symbols has no seam."""

from __future__ import annotations

import numpy as np
import pytest

from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from sdr.loop_source import drift_is_seamless, loop_samples_for, seamless_drift_ppm

LOOP_S = 3.4  # the shortest whole number of burst periods whose one-symbol drift is within 10 ppm


def _coherence(a: np.ndarray, b: np.ndarray) -> float:
    return float(abs(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_seamless_drift_values(wf):
    n_loop = loop_samples_for(wf, "burst", LOOP_S)
    ppm = seamless_drift_ppm(wf, n_loop)
    assert ppm == pytest.approx(wf.fft_size / (LOOP_S * wf.working_rate_hz) * 1e6) and 9.7 < ppm < 9.9
    assert drift_is_seamless(wf, n_loop, ppm) and drift_is_seamless(wf, n_loop, -ppm)
    assert drift_is_seamless(wf, n_loop, 0.0)
    assert not drift_is_seamless(wf, n_loop, ppm * (1 + 1e-6))  # 1e-3 samples of slide: a seam
    assert seamless_drift_ppm(wf, 2 * n_loop, symbols=2) == pytest.approx(ppm)


@pytest.mark.parametrize("fraction", [1.0, 0.99])
def test_the_illumination_continues_across_the_seam_only_at_a_seamless_drift(wf, fraction):
    """Every impairment on, the clock tied to the LO.  At the seamless drift the samples one loop
    later equal the loop's first samples up to a phase (the side band's tag clock and the phase
    noise are not periodic): coherence 0.999 at 30 dB SNR (1 / (1 + 1/snr)).  At 0.99 of it the
    loop slides 1013.8 samples, 10.2 short of a symbol: a wideband OFDM symbol against itself
    10 samples off is nearly orthogonal (coherence far below 0.5)."""
    n_loop = loop_samples_for(wf, "burst", LOOP_S)
    ppm = fraction * seamless_drift_ppm(wf, n_loop)
    emu = Emulator(wf, ScenarioConfig(seed=3, mode="cw", bands=("central", "upper"), lo_ppm=ppm,
                                      duration_s=LOOP_S + 0.02))  # fmt: skip
    assert emu.truth.sample_clock_ppm == ppm
    per = emu.block_samples
    span = 4 * wf.fft_size
    first = emu.generate_block(0)[0, :span]
    b, off = divmod(n_loop, per)
    later = np.concatenate([emu.generate_block(b), emu.generate_block(b + 1)], axis=1)[0, off : off + span]
    coherence = _coherence(first, later)
    if fraction == 1.0:
        assert coherence > 0.995
    else:
        assert coherence < 0.5


def test_the_soak_counts_a_loss_of_lock_only_after_the_first_lock():
    from backscatter.commands.bench_procs import TimingWatch

    watch = TimingWatch()
    rows = [
        {"time_s": 0.1},  # a worker without timing tracking: ignored
        {"time_s": 0.2, "timing_locked": False, "timing_error_samples": 0.9},  # still acquiring
        {"time_s": 0.3, "timing_locked": True, "timing_error_samples": -0.02, "timing_drift_ppm": 9.8},
        {"time_s": 0.4, "timing_locked": False, "timing_error_samples": 0.15, "timing_drift_ppm": 9.79},
        {
            "time_s": 0.5,
            "timing_locked": True,
            "timing_error_samples": 0.01,
            "timing_drift_measured_ppm": 9.81,
        },
    ]
    for r in rows:
        watch.add(r)
    s = watch.summary()
    assert (s["stats"], s["locked"], s["lost_after_lock"], s["first_lock_s"]) == (4, 2, 1, 0.3)
    assert s["max_abs_error_samples"] == pytest.approx(0.15)  # the 0.9 before the first lock is not counted
    assert (s["drift_ppm"], s["drift_measured_ppm"]) == (9.79, 9.81)
