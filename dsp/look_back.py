"""Look-back: the tap features blind acquisition kept, put to use once a side band is acquired.

While a side band is being acquired the receiver keeps, for windows older than about one
packet, only the whitened tap features acquisition computed (:class:`dsp.acquisition.TapSpace`,
``L`` = 32 numbers a window instead of ``N``).  Once the band's reference is known those
features still give, for the packets that arrived before acquisition (docs/RECEIVER.md,
"Look-back"):

* **tag samples**: every reference the receiver installs lies in the span of the taps, so the
  projection of window ``m`` on the reference delayed by the window's fractional delay ``f_m``
  (:mod:`dsp.tracking`) is ``sum_p f_m**p (features_m @ c_p)``, with ``c_p`` the least-squares
  solution of ``F c_p = q_p`` (``F`` ``[N, L]`` the feature matrix, ``q_p`` the delay
  polynomial's projection columns): the same aligned projection the raw windows get;
* **a CFR estimate** from a decoded packet, the coherent sum its re-modulated waveform weights
  (the feature-domain twin of an epoch's window sum, aligned the same way): with it the
  look-back packets refine the reference as later packets do, instead of all being demodulated
  with the blind eigenvector.

The features were taken with the central band's CFO ``nu0`` removed inside each window (the
tag's offset was not known yet).  The projection columns are fitted at the band's own CFO, and
the CFR is read through :meth:`dsp.acquisition.TapSpace.cfr_from_taps` at the band's offset
from ``nu0``; what the features lost of a band offset by up to 0.15 subcarrier (its power
outside their span, ``(pi delta)**2 / 3``: 0.3 dB at 100 ppm of tag clock) stays lost for the
look-back tag samples.
"""

from __future__ import annotations

import numpy as np

from dsp.acquisition import TapSpace
from dsp.references import ramp
from dsp.tracking import DelayBasis


class LookBack:
    """Tap features ``[window, L]`` of windows starting at ``starts`` ``[window]`` (increasing),
    taken with the central CFO ``nu0_hz`` removed inside each window."""

    def __init__(
        self, space: TapSpace, basis: DelayBasis, starts: np.ndarray, features: np.ndarray, nu0_hz: float
    ):
        if starts.shape != features.shape[:1] or features.shape[1:] != (len(space.delays),):
            raise ValueError(f"look-back: {starts.shape[0]} starts for features {features.shape}")
        self.space, self.basis = space, basis
        self.starts, self.features, self.nu0_hz = starts, features, float(nu0_hz)
        self._fmat = space.feature_matrix(np.conj(ramp(space.wf, nu0_hz))).astype(complex)

    @property
    def nbytes(self) -> int:
        return self.starts.nbytes + self.features.nbytes

    def locate(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions into the kept windows, found ``[window]`` bool) of windows at ``starts``."""
        pos = np.searchsorted(self.starts, starts)
        clipped = np.minimum(pos, self.starts.size - 1)
        return clipped, (pos < self.starts.size) & (self.starts[clipped] == starts)

    def columns(self, reference: np.ndarray, cfo_hz: float) -> np.ndarray:
        """``[L, P + 1]``: the delay polynomial's projection columns of ``reference`` ``[N]``
        (:meth:`dsp.tracking.DelayBasis.columns`) on the features, by least squares."""
        q = self.basis.columns(reference, cfo_hz).astype(complex)  # [N, P + 1]
        return np.linalg.lstsq(self._fmat, q, rcond=None)[0]

    def tag_samples(self, starts: np.ndarray, f: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Projections ``[window]`` of the windows at ``starts`` (fractional delays ``f``) on the
        reference of ``cols`` (:meth:`columns`); nan where no features were kept."""
        z = np.full(starts.size, np.nan + 0j)
        pos, ok = self.locate(starts)
        zp = self.features[pos[ok]] @ cols  # [window, P + 1]
        z[ok] = np.sum(zp * self.basis.powers(f[ok]), axis=1)
        return z

    def cfr(self, starts: np.ndarray, f: np.ndarray, w: np.ndarray, cfo_hz: float) -> np.ndarray | None:
        """CFR ``[subcarrier]`` (arbitrary scale) of ``sum_m w_m window_m``, each window aligned
        to the reference frame, for windows at ``starts`` with fractional delays ``f`` and
        weights ``w`` of a band at ``cfo_hz``; None unless every window has its features.

        Alignment multiplies subcarrier ``k`` by ``exp(+j w_k f)`` = ``sum_p coef[p, k] f**p``
        (:class:`dsp.tracking.DelayBasis`), so the sum is ``P + 1`` weighted tap sums, each taken
        to a CFR and weighted by its coefficients.
        """
        pos, ok = self.locate(starts)
        if not ok.all():
            return None
        wp = w[None, :] * self.basis.powers(f).T  # [P + 1, window]
        taps = wp @ self.features[pos]  # [P + 1, L]
        offset = cfo_hz - self.nu0_hz
        cfrs = np.stack([self.space.cfr_from_taps(t, offset) for t in taps])  # [P + 1, subcarrier]
        return np.sum(self.basis.coef * cfrs, axis=0)
