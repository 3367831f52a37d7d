"""Shared fixtures: the seeded emulator is the test oracle."""

from __future__ import annotations

import os

# one BLAS thread, before numpy loads (as backscatter/__init__.py does for the CLI): oversubscribed
# BLAS threads on a 2-core machine make small products several times slower
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import warnings

import numpy as np
import pytest
from scipy.stats import chi2

from dsp.waveform import SPEED_OF_LIGHT_M_S, WaveformConfig, get_profile
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig


class EmptyToleranceWarning(UserWarning):
    """A ``pytest.approx`` whose relative tolerance is smaller than its default absolute one."""


_approx = pytest.approx


def _approx_that_can_fail(expected, rel=None, abs=None, nan_ok=False):
    """``pytest.approx``, refusing a comparison that its default ``abs=1e-12`` makes empty.

    Without ``abs``, approx allows ``max(rel |x|, 1e-12)`` (``rel`` 1e-6 by default), so bounds in
    s^2 (1e-22 to 1e-17) compared "to 1e-9" passed for any two values and deviations in s (5e-11)
    within 2 % (the session-13 mutation check of dsp/crlb.py: 17 comparisons of s^2 were empty).
    Values under 1e-9 whose written tolerance the default ``abs`` exceeds tenfold are refused:
    such a test says ``abs=0`` (or compares a ratio with 1).  With warnings as errors the warning
    fails it.
    """
    if abs is None:
        try:
            mags = np.abs(np.asarray(expected, dtype=complex)).ravel()
        except (TypeError, ValueError):  # a mapping or a mixed sequence: approx checks it itself
            mags = np.zeros(0)
        r = 1e-6 if rel is None else rel
        # the default abs both dominates the written tolerance tenfold and allows more than 0.1 %
        small = mags[(mags > 0) & (10 * r * mags < 1e-12) & (mags < 1e-9)]
        if small.size:
            warnings.warn(
                f"pytest.approx({float(small[0]):.3g}, rel={r:g}) is within 1e-12 of anything that small: "
                "the default abs=1e-12 makes the comparison empty; pass abs=0 or compare a ratio",
                EmptyToleranceWarning,
                stacklevel=2,
            )
    return _approx(expected, rel=rel, abs=abs, nan_ok=nan_ok)


pytest.approx = _approx_that_can_fail


@pytest.fixture(scope="session")
def wf() -> WaveformConfig:
    return get_profile("default")


@pytest.fixture(scope="session")
def calibration_file(tmp_path_factory):
    """A valid calibration file of the default waveform (three bands, a history), as
    ``calibration.store.save_calibration`` writes it; for the loader's tests of corrupt files."""
    from calibration.store import BandSetting, Calibration, RadioSettings, load_calibration, save_calibration

    wf = get_profile("default")
    bands = ("central", "lower", "upper")
    n_k = len(wf.active_subcarriers)
    cal = Calibration(
        RadioSettings(
            wf, wf.working_rate_hz, tuple(BandSetting(b, wf.band_centers_hz[b], 30.0, "RX1") for b in bands)
        ),
        {b: np.exp(1j * np.linspace(0, 1, n_k)) for b in bands},
        dict.fromkeys(bands, 1e-8),
        {"lower": 1.5, "upper": -0.5},
        25.0,
        20.0,
        {"snr_db": 30.0},
        np.zeros((4, 3)),
        "fuzz",
        "2026-01-01T00:00:00Z",
    )
    path = tmp_path_factory.mktemp("calibration") / "cal.h5"
    save_calibration(path, cal)
    load_calibration(path)  # valid
    return path


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
    r = iq[c, : m * n] * np.exp(-2j * np.pi * tr.cfo_hz[band] * t / wf.working_rate_hz)
    y = np.fft.fft(r.reshape(m, n), axis=1)[:, wf.active_bins] / np.sqrt(n)  # [window, subcarrier]
    k = wf.active_subcarriers
    delay = tr.illumination_delay_samples(np.arange(m) * n + (n - 1) / 2)  # [window]
    h = np.mean(y * np.exp(2j * np.pi * np.outer(delay, k) / n), axis=0) / wf.zadoff_chu
    h *= np.exp(-1j * tr.phase_rad[band]) / tr.scale[band]
    return h / tr.first_harmonic(band) if band != "central" else h


def emulate(wf: WaveformConfig, **kw) -> tuple[Emulator, np.ndarray]:
    emu = Emulator(wf, ScenarioConfig(**kw))
    return emu, emu.generate()


def analytic_band_cfrs(emu: Emulator) -> dict[str, np.ndarray]:
    """The propagation CFR of each band ``[subcarrier]`` from the scenario's paths, written out from
    SYSTEM.md section 1, ``H(f) = sum_l a_l exp(-j 2 pi (F + f) d_l / c)`` (not through the code
    the emulator uses).  Central band: the direct channel plus the tag's structural mode
    (``structural_mode_gain`` times ``H_1 H_2`` at the carrier); the tag's data leak into the
    central band (duty-cycle error) is left out, so callers check it is zero.  Side bands: the
    compound ``H_1(f) H_2u(f)``, ``H_1`` at the carrier and ``H_2u`` at the side band's centre.
    """
    wf = emu.wf
    f = wf.active_freqs_hz
    centers = wf.band_centers_hz

    def cfr(paths, center_hz: float) -> np.ndarray:
        tau = np.asarray(paths.lengths_m) / SPEED_OF_LIGHT_M_S
        return np.exp(-2j * np.pi * np.outer(center_hz + f, tau)) @ np.asarray(paths.gains)

    h1 = cfr(emu.paths_tx_tag, centers["central"])
    out = {}
    for band in emu.sc.bands:
        if band == "central":
            h2 = cfr(emu.paths_tag_rx, centers["central"])
            out[band] = cfr(emu.paths_tx_rx, centers["central"]) + emu.sc.structural_mode_gain * h1 * h2
        else:
            out[band] = h1 * cfr(emu.paths_tag_rx, centers[band])
    return out


def cfr_noise_var(model: np.ndarray, circuitry: np.ndarray, snr_db: float, windows: float) -> np.ndarray:
    """Noise variance per subcarrier ``[subcarrier]`` of a calibrated CFR estimate averaged over
    ``windows`` OFDM symbols, in the units of the propagation ``model``.

    The emulator sets the per-subcarrier noise power of one window to the band's mean signal
    power over its SNR, ``mean_k abs(H_k C_k)**2 / snr`` (the side bands' first harmonic scales
    signal and estimate alike); averaging divides it by ``windows``, and dividing by the
    circuitry ``C_k`` multiplies it by ``1 / abs(C_k)**2``.
    """
    p_sig = float(np.mean(np.abs(model * circuitry) ** 2))
    return p_sig / (10 ** (snr_db / 10) * windows) / np.abs(circuitry) ** 2


# Limits of the CFR fits (dsp/cir.py fit_cfr) in test_emulator.py and test_receiver.py.  Under the
# model each fitted parameter error over its Cramer-Rao standard deviation is N(0, 1) (least squares attains
# the bound at these SNRs: 30 dB per subcarrier, 120 or more windows, 800 subcarriers):
# P(|z| > 5) = 5.7e-7, so the 450 z-scores of 50 scenarios x 3 bands x 3 parameters all pass with
# probability 1 - 3e-4.  The weighted residual ``chi2`` is chi-square with ``2 K - 3`` = 1597
# degrees of freedom: outside its [1e-6, 1 - 1e-6] quantiles (chi2 / dof within 0.84-1.18)
# the residual is not the configured noise (a shape error, or a noise level off by ~16 %).
Z_MAX = 5.0
CHI2_TAIL = 1e-6


def chi2_bounds(dof: int) -> tuple[float, float]:
    """The ``CHI2_TAIL`` and ``1 - CHI2_TAIL`` quantiles of chi-square with ``dof`` degrees."""
    return float(chi2.ppf(CHI2_TAIL, dof)), float(chi2.isf(CHI2_TAIL, dof))


@pytest.fixture
def window(qtbot, qapp):
    """Factory of shown monitor windows: ``window(source, size=(w, h), show=True, **MainWindow kwargs)``.

    The fixture, not the test, holds every window and its source until teardown, then stops the
    source, closes the window, lets Qt delete it and collects the garbage, in that order, while
    nothing is painting.  Why: a ``MainWindow`` sits in reference cycles (its slots, pyqtgraph's
    items), so a window a test merely drops is freed by Python's cyclic collector at some later
    allocation, which can be inside a paint of that very window: a use after free (seen in CI as a
    segmentation fault in ``QPainter::restore`` after "wrapped C/C++ object of type AxisItem has
    been deleted").  The GUI test modules use :func:`gc_in_paint` so that such a bug crashes every
    run, not one CI run in many.
    """
    import gc

    from PyQt5.QtCore import QEvent
    from PyQt5.QtWidgets import QApplication

    from gui.theme import apply_theme
    from gui.window import MainWindow

    theme = apply_theme(qapp, "dark")
    made: list = []

    def make(source, size: tuple[int, int] = (1600, 1000), show: bool = True, **kwargs) -> MainWindow:
        win = MainWindow(source, theme, **kwargs)
        made.append((win, source))
        win.resize(*size)
        qtbot.addWidget(win)
        if show:
            win.show()
            source.start()
        return win

    yield make
    for win, source in made:
        source.stop()
        win.close()
        win.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    made.clear()
    gc.collect()


@pytest.fixture
def gc_in_paint(monkeypatch):
    """A full collection of Python's cyclic garbage at the start of every plot's paint.

    A Qt object that only the collector frees while Qt still uses it (see :func:`window`) then
    crashes the test every run, not once in many.  Objects older than the test are frozen out of
    the collections, which then cost about 20 ms each (the GUI tests about 10 % longer).
    """
    import gc

    import pyqtgraph as pg

    paint = pg.GraphicsView.paintEvent

    def collecting(self, ev):
        gc.collect()
        return paint(self, ev)

    monkeypatch.setattr(pg.GraphicsView, "paintEvent", collecting)
    gc.collect()
    gc.freeze()  # what exists before the test is never scanned again: a collection costs ms, not 0.1 s
    yield
    gc.unfreeze()
