"""Sample-clock drift: fractional window delays and the timing model that tracks them.

Every node derives its LO and its sample clock from one reference (SYSTEM.md
section 3), so a relative offset ``delta`` between TX and RX both shifts the
carrier by ``fc delta`` and stretches the illumination in RX samples: the
symbol boundaries move by ``-delta`` samples per sample (31 samples per second
per ppm at 30.72 MS/s).  The receiver keeps its windows on the moving symbol
grid in two parts:

* an integer part: each window starts at ``nominal + round(g)``, where ``g`` is
  the timing model's correction at that window (:class:`TimingModel`);
* a fractional part ``f = g - round(g)`` in ``[-0.5, 0.5]``: the window holds
  the reference symbol delayed by ``f`` samples.  It is undone *linearly*, so
  the heavy per-window work stays one matrix product (:class:`DelayBasis`).

The delay ``f`` multiplies subcarrier ``k`` by ``exp(-j w_k f)``,
``w_k = 2 pi k / N``.  Over ``|f| <= 1/2`` the inverse ``exp(+j w_k f)`` is fitted
by a polynomial ``sum_p a_p[k] f**p`` (least squares, degree 4: largest error
2.6e-3 at the band edge of the default profile, ``DelayBasis.fit_error``).  Hence

* a projection on the reference delayed by ``f`` is ``sum_p f**p (window . q_p)``
  with ``P + 1`` fixed columns ``q_p`` (one product per window, as before);
* a weighted sum of windows aligned to the reference is
  ``sum_p a_p[k] FFT(sum_m w_m f_m**p window_m)[k]``: ``P + 1`` weighted sums
  and FFTs per epoch instead of one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dsp.references import cfr_from_symbol, ramp
from dsp.waveform import WaveformConfig

FIT_HALF_WIDTH = 0.5  # samples: the integer part of the drift is taken by the window grid


class DelayBasis:
    """Polynomial model of fractional window delays for one waveform.

    ``coef`` ``[P + 1, subcarrier]`` fits ``exp(+j w_k f)`` over ``|f| <= 1/2``.
    """

    def __init__(self, wf: WaveformConfig, degree: int = 4):
        self.wf = wf
        self.degree = degree
        w = 2 * np.pi * wf.active_subcarriers / wf.fft_size  # [subcarrier] rad per sample
        f = np.linspace(-FIT_HALF_WIDTH, FIT_HALF_WIDTH, 129)
        vander = f[:, None] ** np.arange(degree + 1)  # [grid, P + 1]
        target = np.exp(1j * np.outer(f, w))  # [grid, subcarrier]
        self.coef = np.linalg.lstsq(vander, target, rcond=None)[0]  # [P + 1, subcarrier]
        self.fit_error = float(np.max(np.abs(vander @ self.coef - target)))
        self._w = w

    def powers(self, f: np.ndarray) -> np.ndarray:
        """``f[m] ** p``, ``[window, P + 1]``."""
        return np.asarray(f, float)[:, None] ** np.arange(self.degree + 1)

    def columns(self, reference: np.ndarray, cfo_hz: float) -> np.ndarray:
        """``[N, P + 1]`` columns ``q_p``: ``window @ q`` then ``powers(f) . row`` is the
        projection on ``reference`` delayed by ``f``, scaled so ``c * reference`` gives ``c``."""
        wf = self.wf
        spec = cfr_from_symbol(wf, reference, cfo_hz) * wf.zadoff_chu  # R[k] on the active bins
        energy = float(np.sum(np.abs(spec) ** 2))
        full = np.zeros((self.degree + 1, wf.fft_size), complex)
        full[:, wf.active_bins] = spec[None, :] * np.conj(self.coef)
        v = np.fft.ifft(full, axis=-1) * np.sqrt(wf.fft_size) * ramp(wf, cfo_hz)[None, :]
        return np.ascontiguousarray((np.conj(v) / max(energy, 1e-30)).T, np.complex64)

    def curvature(self, reference: np.ndarray, cfo_hz: float) -> float:
        """``S2 - S1**2`` (rad**2 per sample**2): the slope of ``Re(z'/z)`` per sample of delay error."""
        p = np.abs(cfr_from_symbol(self.wf, reference, cfo_hz)) ** 2
        p = p / max(float(p.sum()), 1e-30)
        s1 = float(p @ self._w)
        return float(p @ self._w**2) - s1**2

    def _z_dz(self, zp: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``z(f) = sum_p f**p zp_p`` and its derivative, ``[window]`` each."""
        pw = self.powers(f)
        dpw = np.zeros_like(pw)
        dpw[:, 1:] = pw[:, :-1] * np.arange(1, self.degree + 1)
        return np.sum(zp * pw, axis=1), np.sum(zp * dpw, axis=1)

    def residual(self, zp: np.ndarray, f: np.ndarray, curvature: float) -> tuple[float, float]:
        """Delay error left after the model, from projections ``zp`` ``[window, P + 1]``.

        With ``z(f) = sum_p f**p zp_p`` and ``z'`` its derivative, a window whose true delay is
        ``f + e`` gives ``Re(z' / z) = curvature * e`` to first order.  Returns the
        ``abs(z)**2``-weighted mean error (samples) and the total weight ``sum abs(z)**2``.
        """
        z, dz = self._z_dz(zp, f)
        weight = float(np.sum(np.abs(z) ** 2))
        if weight <= 0 or curvature <= 0:
            return 0.0, 0.0
        return float(np.sum((np.conj(z) * dz).real) / (curvature * weight)), weight

    def residuals(self, zp: np.ndarray, f: np.ndarray, curvature: float) -> np.ndarray:
        """The same error per window, ``[window]`` (samples)."""
        z, dz = self._z_dz(zp, f)
        return (np.conj(z) * dz).real / (curvature * np.maximum(np.abs(z) ** 2, 1e-30))

    def align(self, sums: np.ndarray, cfo_hz: float) -> np.ndarray:
        """Aligned window sum ``[N]`` from ``sums[p] = sum_m w_m f_m**p window_m`` ``[P + 1, N]``."""
        wf = self.wf
        rm = ramp(wf, cfo_hz)
        spec = np.fft.fft(sums * np.conj(rm)[None, :], axis=-1)[:, wf.active_bins]
        out = np.zeros(wf.fft_size, complex)
        out[wf.active_bins] = np.sum(self.coef * spec, axis=0)
        return np.fft.ifft(out) * rm


@dataclass
class TimingModel:
    """Correction ``g(s) = offset + rate * (s - anchor)`` (samples) of the window grid.

    ``rate`` is ``-delta``: the applied drift is the prior ``cfo / fc`` (shared reference)
    plus a loop correction from the measured residuals.  ``history`` keeps
    ``(index, measured g)`` pairs for the measured drift, reported beside the prior.
    """

    anchor: int = 0
    offset: float = 0.0
    prior_rate: float = 0.0
    rate_correction: float = 0.0
    last_error: float | None = None
    history: list[tuple[int, float]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.prior_rate + self.rate_correction

    def at(self, index: np.ndarray | int) -> np.ndarray:
        return self.offset + self.rate * (np.asarray(index, float) - self.anchor)

    def move_anchor(self, index: int) -> None:
        self.offset = float(self.at(index))
        self.anchor = int(index)

    def update(self, index: int, error: float, span: int, gain: float, rate_gain: float) -> None:
        """Fold in a residual ``error`` (samples) measured around ``index`` over ``span`` samples."""
        self.move_anchor(index)
        self.last_error = error
        self.history.append((index, self.offset + error))
        if len(self.history) > 256:
            del self.history[:-256]
        self.offset += gain * error
        self.rate_correction += rate_gain * error / max(span, 1)

    def measured_rate(self, min_span: int) -> float | None:
        """Least-squares slope of the measured corrections, once they span ``min_span`` samples."""
        if len(self.history) < 3 or self.history[-1][0] - self.history[0][0] < min_span:
            return None
        s, g = np.asarray(self.history, float).T
        ds, dg = s - s.mean(), g - g.mean()  # the closed-form slope (np.polyfit's SVD cost 4 % of
        return float(ds @ dg / (ds @ ds))  # the receiver's time, once per segment)
