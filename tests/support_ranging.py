"""Range limits for receiver tests run as a user runs them (issue 19, item 3).

A user has a calibration made by the CW workflow (``calibration/workflow.py`` through
``experiments.common.workflow_calibration``: 0.3 s of CW at 30 dB, line of sight, lengths known
from the geometry) of the same radio (``HW_SEED``: the scenario is built with that
``circuitry_seed``), and types the TX-RX distance (``D0_TYPED_M``: the emulator's RX stands at
(20, 0) m, which a tape measure gives).  The receiver then gets neither the true circuitry nor
the true distance.

Expected range and limit per side band ``u`` (SYSTEM.md (99): range = ``d0 + c (tau_u - tau_0)``):

* expected: the true range plus the bias of IR First on the noiseless model of the scenario
  (tests/conftest.py ``analytic_band_cfrs``: direct path plus the tag's structural mode in the
  central band), found by the independent oracle's first-peak search
  (tests/oracle/channel.py);
* noise: ``c sqrt(var_0 + var_u)`` with each band's single-path Cramer-Rao bound
  (tests/oracle/bound.py) at its configured SNR and symbol count, plus the emulator's IQ image
  (gain and phase imbalance, -32 dBc by default) as a second, un-averaged noise on each band
  (an image is fixed per epoch, so it does not average down; counting it as white noise of
  that level over-bounds it); ``K_SIGMA`` = 5 times that (two-sided 6e-7);
* calibration: the workflow's own error, derived the same way on its scenario: the IR First
  bias of its noiseless model (the central band's structural mode, imprinted into the central
  response) plus ``K_SIGMA`` times its Cramer-Rao deviation (30 dB, 6 x 1500 symbols).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from dsp.waveform import WaveformConfig
from experiments.common import CAL_DURATION_S, LAB_CIRCUITRY_SEED, workflow_calibration
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from tests.conftest import analytic_band_cfrs
from tests.oracle.bound import single_path_crlb_s2
from tests.oracle.channel import first_peak_delay_s
from tests.oracle.waveform import Numerology

C = 299_792_458.0
HW_SEED = LAB_CIRCUITRY_SEED  # the emulated radio: TX, tag and RX hardware
D0_TYPED_M = 20.0  # the TX-RX distance the user types
K_SIGMA = 5.0
NUM = Numerology()
CAL_EPOCH_SYMBOLS = 1500


def cal_kwargs(wf: WaveformConfig, bands) -> dict:
    """The receiver's keyword arguments from the workflow calibration of radio ``HW_SEED``."""
    return workflow_calibration(wf, tuple(bands), HW_SEED).receiver_kwargs()


def image_rejection(sc: ScenarioConfig) -> float:
    """Power of the IQ image over the signal, ``|1 - g e^{j phi}|^2 / |1 + g e^{j phi}|^2``."""
    if sc.ideal:
        return 0.0
    z = 10 ** (sc.iq_gain_imbalance_db / 20) * np.exp(1j * np.radians(sc.iq_phase_imbalance_deg))
    return float(abs(1 - z) ** 2 / abs(1 + z) ** 2)


def band_var_s2(snr_db: float, symbols: float, irr: float) -> float:
    var = single_path_crlb_s2(NUM.freqs_hz, 10 ** (snr_db / 10), symbols)
    return var + (single_path_crlb_s2(NUM.freqs_hz, 1 / irr, 1) if irr > 0 else 0.0)


def model_bias_m(emu: Emulator) -> dict[str, float]:
    """Per side band: range from IR First on the noiseless model minus the true range."""
    h = analytic_band_cfrs(emu)
    eta = 0.3  # ReceiverConfig().ir_threshold, the default the tests run with
    tr = emu.truth
    tau0 = first_peak_delay_s(NUM, h["central"], tr.tx_rx_distance_m / C, eta)
    side_los_s = tr.range_true_m / C
    return {
        b: tr.tx_rx_distance_m + C * (first_peak_delay_s(NUM, h[b], side_los_s, eta) - tau0) - tr.range_true_m
        for b in h
        if b != "central"
    }


def calibration_error_of(cal_emu: Emulator, symbols: float) -> float:
    """Bound on the range error a CW calibration made on ``cal_emu``'s scenario over ``symbols``
    OFDM symbols brings (the largest over side bands): the IR First bias of its noiseless model
    plus ``K_SIGMA`` times its Cramer-Rao deviation."""
    sc = cal_emu.sc
    irr = image_rejection(sc)
    out = 0.0
    for b, v in model_bias_m(cal_emu).items():
        var = band_var_s2(sc.snr_db["central"], symbols, irr) + band_var_s2(sc.snr_db[b], symbols, irr)
        out = max(out, abs(v) + K_SIGMA * C * math.sqrt(var))
    return out


@functools.lru_cache(maxsize=4)
def calibration_error_m(wf: WaveformConfig, bands: tuple[str, ...]) -> float:
    """Bound on the workflow calibration's own range error (the largest over side bands)."""
    sc = ScenarioConfig(
        seed=HW_SEED + 1, duration_s=CAL_DURATION_S, mode="cw", bands=bands, circuitry_seed=HW_SEED
    )
    return calibration_error_of(Emulator(wf, sc), CAL_DURATION_S * wf.working_rate_hz // wf.fft_size)


def range_limits_m(
    emu: Emulator, m_central: float, m_side: float, calibrated: bool = True, cal_error_m: float | None = None
) -> dict:
    """``{band: (expected, tolerance)}`` for each side band's range of one epoch; ``cal_error_m``
    (default: the workflow calibration's, :func:`calibration_error_m`) for another calibration."""
    sc = emu.sc
    irr = image_rejection(sc)
    if not calibrated:
        cal = 0.0
    else:
        cal = calibration_error_m(emu.wf, tuple(sc.bands)) if cal_error_m is None else cal_error_m
    out = {}
    for b, bias in model_bias_m(emu).items():
        var = band_var_s2(sc.snr_db["central"], m_central, irr) + band_var_s2(sc.snr_db[b], m_side, irr)
        out[b] = (emu.truth.range_true_m + bias, K_SIGMA * C * math.sqrt(var) + cal)
    return out


def assert_ranges(
    emu: Emulator, epoch, m_side: float, method: str = "ir_first_interp", cal_error_m: float | None = None
) -> None:
    """Each side band's range within its limit; the combined range between the bands' limits."""
    lo, hi = [], []
    for b, (expected, tol) in range_limits_m(emu, epoch.n_symbols, m_side, cal_error_m=cal_error_m).items():
        got = epoch.range_band_m[method][b]
        assert abs(got - expected) <= tol, f"{b}: {got:.4f} m, expected {expected:.4f} +- {tol:.4f} m"
        lo.append(expected - tol)
        hi.append(expected + tol)
    assert min(lo) <= epoch.range_m[method] <= max(hi)
