"""MUSIC's linear algebra (:mod:`dsp.ranging.music`): the smoothed covariance of one band's CFR over
the contiguous runs of its subcarriers, its real (centro-Hermitian) form, the model order from its
eigenvalues, and the pseudo-spectrum's denominator ``norm(E_n^H a(tau))**2`` from either subspace.

Shapes: a CFR ``[..., subcarrier]`` (leading axes are snapshots), covariances ``[L, L]`` for
sub-vectors of ``L`` adjacent subcarriers, eigenvectors ``[L, vector]``.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
import scipy.linalg
from numpy.lib.stride_tricks import sliding_window_view

CRITERIA = ("mdl", "aic")
# grid points where the denominator from the signal subspace is below this fraction of L are
# recomputed from the noise subspace (the subtraction's absolute error, ~5e-13 at L = 200, would
# be more than 1e-8 of the value there)
_EXACT_BELOW = 1e-6


def contiguous_runs(subcarriers: np.ndarray) -> list[np.ndarray]:
    """Split ``subcarriers`` ``[subcarrier]`` (increasing) into runs of consecutive indices.

    Returns one array of positions into ``subcarriers`` per run.
    """
    k = np.asarray(subcarriers)
    breaks = np.flatnonzero(np.diff(k) != 1) + 1
    return np.split(np.arange(k.size), breaks)


def _forward_covariance(cfr: np.ndarray, runs: list[np.ndarray], length: int) -> tuple[np.ndarray, int]:
    """Mean of ``x_s x_s^H`` over the sub-vectors ``x_s`` ``[L]`` (no backward half) and their number.

    Computed lag by lag: ``R[i, i + d] = sum_s h[s + i] conj(h[s + i + d])`` is a sliding
    sum of length ``S`` (sub-vectors per run) of the lag-``d`` products ``h[k] conj(h[k + d])``,
    i.e. a difference of two cumulative sums: ``O(L M)`` work for a run of ``M`` values
    instead of the ``O(L^2 S)`` of the product of the stacked sub-vectors
    (:func:`smoothed_covariance_direct`).  Both agree to rounding (a few ``1e-16`` of the
    largest entry).
    """
    cfr = np.asarray(cfr)
    x = cfr.reshape(-1, cfr.shape[-1])  # [snapshot, subcarrier]
    lag_sums = None  # [lag d, start i]: sum over sub-vectors of h[s + i] conj(h[s + i + d])
    n = 0
    for run in runs:
        if run.size < length:
            continue
        m = run.size
        s_count = m - length + 1
        prod = np.empty((length, m), np.complex128)  # [lag d, k]: h[k] conj(h[k + d]), 0 past the run
        for i, row in enumerate(x[:, run].astype(np.complex128, copy=False)):
            shifted = sliding_window_view(np.concatenate([row, np.zeros(length)]).conj(), m)[:length]
            if i == 0:
                np.multiply(row, shifted, out=prod)
            else:
                prod += row * shifted
        c = np.cumsum(prod, axis=-1, out=prod)  # c[d, k] = sum of the lag-d products up to k
        part = c[:, s_count - 1 : s_count - 1 + length].copy()  # [d, i], used where i + d < L
        part[:, 1:] -= c[:, : length - 1]
        lag_sums = part if lag_sums is None else lag_sums + part
        n += x.shape[0] * s_count
    if lag_sums is None:
        raise ValueError(f"no run of adjacent subcarriers is at least subvector_len = {length} long")
    flat, lower = _lag_index(length)
    r = lag_sums.reshape(-1).take(flat)  # R[i, j] = lag_sums[j - i, i] above the diagonal ...
    r.imag[lower] *= -1  # ... and its conjugate below
    r /= n
    return r, n


@functools.lru_cache(maxsize=8)
def _lag_index(length: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat index ``[L, L]`` of ``(abs(j - i), min(i, j))`` into an ``[L, L]`` array, and ``i > j``."""
    i, j = np.indices((length, length))
    flat = np.abs(j - i) * length + np.minimum(i, j)
    lower = i > j
    flat.flags.writeable = lower.flags.writeable = False
    return flat, lower


def _unitary_left(x: np.ndarray) -> np.ndarray:
    """``Q^H x`` for ``x`` ``[L, ...]``, ``Q`` the sparse unitary matrix that makes a centro-Hermitian
    matrix real (``Q^H R Q``; Lee, "Centrohermitian and skew-centrohermitian matrices", 1980):
    columns ``(e_k + e_{L-1-k}) / sqrt 2``, ``e_M`` when ``L`` is odd, ``j (e_k - e_{L-1-k}) / sqrt 2``."""
    half = x.shape[0] // 2
    top, bottom = x[:half], x[::-1][:half]
    mid = [x[half : half + 1] * np.sqrt(2.0)] if x.shape[0] % 2 else []
    return np.concatenate([top + bottom, *mid, -1j * (top - bottom)]) / np.sqrt(2.0)


def _unitary_right(v: np.ndarray) -> np.ndarray:
    """``Q v`` for ``v`` ``[L, ...]`` (see :func:`_unitary_left`)."""
    length = v.shape[0]
    half = length // 2
    top, bottom = v[:half], v[length - half :]
    mid = [v[half : half + 1] * np.sqrt(2.0)] if length % 2 else []
    return np.concatenate([top + 1j * bottom, *mid, (top - 1j * bottom)[::-1]]) / np.sqrt(2.0)


def real_form(r: np.ndarray) -> np.ndarray:
    """``Re(Q^H r Q)`` ``[L, L]`` (real symmetric): for a forward covariance ``r`` this is ``Q^H R_fb Q``
    of its forward-backward average ``R_fb``, which has the same eigenvalues, and eigenvectors
    ``Q v`` (:func:`_unitary_right`) for the eigenvectors ``v`` of the real form."""
    y = _unitary_left(r)  # Q^H r
    out = _unitary_left(y.conj().T).real.T  # Re((Q^H (Q^H r)^H)^H) = Re(Q^H r Q)
    return 0.5 * (out + out.T)


def smoothed_covariance_direct(
    cfr: np.ndarray, runs: list[np.ndarray], subvector_len: int
) -> tuple[np.ndarray, int]:
    """The forward-backward smoothed covariance ``[L, L]`` and its number of sub-vectors, as
    the product of the stacked sub-vectors: the textbook form, the tests' reference for the
    lag sums of :func:`_forward_covariance` and the real form the estimator uses."""
    length = subvector_len
    cfr = np.asarray(cfr)
    parts = [
        sliding_window_view(cfr[..., r], length, axis=-1).reshape(-1, length)
        for r in runs
        if r.size >= length
    ]
    if not parts:
        raise ValueError(f"no run of adjacent subcarriers is at least subvector_len = {length} long")
    x = np.concatenate(parts, axis=0)  # [sub-vector, L]
    n = x.shape[0]
    r = x.T @ x.conj() / n  # E[x x^H]
    return 0.5 * (r + r[::-1, ::-1].conj()), n


def estimate_order(
    eigenvalues: np.ndarray, n_snapshots: int, criterion: str = "mdl", max_order: int | None = None
) -> int:
    """Number of signals by MDL or AIC (Wax-Kailath) from covariance eigenvalues ``[L]``.

    ``eigenvalues`` in any order; the result lies in ``[0, min(max_order, L - 1)]``.
    ``n_snapshots`` is the nominal number of (here overlapping) sub-vectors.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    lam = np.sort(np.asarray(eigenvalues, np.float64))[::-1]
    length = lam.size
    top = length - 1 if max_order is None else min(int(max_order), length - 1)
    lam = np.maximum(lam, max(lam[0], 1e-300) * 1e-15)  # rounding can leave tiny negatives
    k = np.arange(top + 1)
    tail_n = length - k
    # sums over the smallest L - k eigenvalues, for every k at once
    tail_sum = np.cumsum(lam[::-1])[::-1][: top + 1]
    tail_log = np.cumsum(np.log(lam[::-1]))[::-1][: top + 1]
    log_ratio = tail_log / tail_n - np.log(tail_sum / tail_n)  # log(geometric / arithmetic mean) <= 0
    n = float(n_snapshots)
    free = k * (2 * length - k)
    if criterion == "mdl":
        cost = -n * tail_n * log_ratio + 0.5 * free * np.log(n)
    else:
        cost = -2 * n * tail_n * log_ratio + 2 * free
    return int(np.argmin(cost))


def _power_sum(spec: np.ndarray) -> np.ndarray:
    """``sum_v abs(spec[v, q])**2`` ``[q]`` for ``spec`` ``[vector, q]``."""
    re, im = spec.real, spec.imag
    return np.einsum("vq,vq->q", re, re) + np.einsum("vq,vq->q", im, im)


def _denominator(noise_h: np.ndarray, delays_s: np.ndarray, spacing_hz: float) -> np.ndarray:
    """``norm(E_n^H a(tau))**2`` at ``delays_s`` ``[d]``; ``noise_h`` is ``E_n^H`` ``[vector, L]``."""
    m = np.arange(noise_h.shape[1])
    steer = np.exp(-2j * np.pi * spacing_hz * np.outer(m, delays_s))  # [L, d]
    g = noise_h @ steer
    return np.sum(g.real**2 + g.imag**2, axis=0)


class _Subspace:
    """The MUSIC denominator ``norm(E_n^H a(tau))**2`` of one eigendecomposition.

    Either from the signal eigenvectors ``signal_h`` (``E_s^H`` ``[order, L]``), when there are
    fewer of them than noise eigenvectors (the usual case), or from the real form's noise
    eigenvectors ``noise_v`` ``[L, L - order]`` (``E_n = Q noise_v``, so ``E_n^H a = noise_v^T
    Q^H a``).

    From the signal subspace the grid uses ``L - norm(E_s^H a)**2`` (``norm(a)**2 = L``, ``E_s
    E_s^H + E_n E_n^H = I``): ``order`` FFTs instead of ``L - order``.  The subtraction leaves an
    absolute error of about ``5e-13`` (``L = 200``), which matters only where the denominator is
    tiny (a nearly noise-free path): there (below ``_EXACT_BELOW * L``), and off the grid
    (:meth:`at`, three delays per step of the parabolic refinement), it is the norm of the
    projection residual ``a - E_s E_s^H a``, whose relative error is about ``1e-14 /
    sqrt(den)`` (below ``1e-12`` at the threshold).
    """

    def __init__(self, length: int, signal_h: np.ndarray | None, noise_v: np.ndarray | None = None):
        if (signal_h is None) == (noise_v is None):
            raise ValueError("_Subspace: give the signal or the noise eigenvectors")
        self.length, self.signal_h, self.noise_v = length, signal_h, noise_v

    def _exact(self, steer: np.ndarray) -> np.ndarray:
        """``norm(E_n^H a)**2`` for steering vectors ``steer`` ``[L, d]``."""
        if self.signal_h is None:
            return _power_sum(self.noise_v.T @ _unitary_left(steer))
        residual = steer - self.signal_h.conj().T @ (self.signal_h @ steer)  # (I - E_s E_s^H) a
        return _power_sum(residual)

    def grid(self, k_fft: int) -> np.ndarray:
        """The denominator ``[K]`` at ``tau_q = q / (K df)``, floored at the smallest normal float.

        ``e^H a(tau_q) = FFT_K(conj(e))[q]`` for an eigenvector ``e``."""
        if self.signal_h is None:
            spec = scipy.fft.fft(_unitary_right(self.noise_v).T.conj(), n=k_fft, axis=-1)
            den = _power_sum(spec)
        else:
            den = self.length - _power_sum(scipy.fft.fft(self.signal_h, n=k_fft, axis=-1))
            low = np.flatnonzero(den < _EXACT_BELOW * self.length)
            if low.size:
                m = np.arange(self.length)
                den[low] = self._exact(np.exp(np.outer(m, low) * (-2j * np.pi / k_fft)))
        return np.maximum(den, np.finfo(np.float64).tiny)

    def at(self, delays_s: np.ndarray, spacing_hz: float) -> np.ndarray:
        """The denominator at ``delays_s`` ``[d]`` (``spacing_hz``: subcarrier spacing ``df``)."""
        m = np.arange(self.length)
        steer = np.exp(-2j * np.pi * spacing_hz * np.outer(m, delays_s))  # [L, d]
        return self._exact(steer)


def _top_eigenvectors(c: np.ndarray, tau: np.ndarray, d: np.ndarray, e: np.ndarray, count: int) -> np.ndarray:
    """Eigenvectors ``[L, count]`` of the ``count`` largest eigenvalues of a real symmetric matrix
    from its tridiagonal form (LAPACK ``dsytrd``, lower: reflectors ``c``, ``tau``; diagonal ``d``,
    off-diagonal ``e``): inverse iteration on the tridiagonal matrix (``dstebz``/``dstein``), then
    the reflectors applied (``Q[1:, 1:]`` is the QR-type product of those stored below the
    subdiagonal, ``dormqr``)."""
    length = d.size
    _, z = scipy.linalg.eigh_tridiagonal(
        d, e, select="i", select_range=(length - count, length - 1), check_finite=False
    )
    if length > 1:
        cq, _, info = scipy.linalg.lapack.dormqr(
            "L", "N", c[1:, : length - 1], tau, z[1:], max(1, 64 * count)
        )
        if info != 0:
            raise np.linalg.LinAlgError(f"music: dormqr failed (info {info})")
        z[1:] = cq
    return z
