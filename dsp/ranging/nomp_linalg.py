"""NOMP's small linear algebra: the whitened cost, LAPACK solves without numpy's per-call overhead,
and the steering basis with its Gram matrix (:mod:`dsp.ranging.nomp`)."""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

_ZGESV, _DGESV = lapack.zgesv, lapack.dgesv


def _cost(r: np.ndarray, inv_var: np.ndarray) -> float:
    """Whitened residual energy ``sum_b sum_n abs(r_bn)**2 / sigma_b^2`` (the squares summed over
    the interleaved real and imaginary parts: a third of the time of ``abs(r)**2``)."""
    parts = np.ascontiguousarray(r).view(np.float64)
    return float(np.einsum("bn,bn->b", parts, parts) @ inv_var)


def _lu_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """``a^-1 b`` by LAPACK's ``gesv`` (what ``np.linalg.solve`` calls, the same result to the bit,
    without its ~10 us of Python per call: the fit solves thousands of tiny systems); ``None`` when
    ``a`` is singular (where ``np.linalg.solve`` raises)."""
    gesv = _ZGESV if a.dtype.kind == "c" or b.dtype.kind == "c" else _DGESV
    _, _, x, info = gesv(a, b)
    if info < 0:
        raise ValueError(f"gesv: argument {-info} is invalid")
    return x if info == 0 else None


def _solve_gram(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``gram^-1 rhs`` for ``rhs`` ``[path, ...]`` (LU; pseudo-inverse if singular)."""
    flat = rhs.reshape(rhs.shape[0], int(np.prod(rhs.shape[1:])))  # (-1 cannot size zero paths)
    out = _lu_solve(gram, flat) if gram.size else flat.copy()
    if out is None:
        out = np.linalg.pinv(gram) @ flat
    return out.reshape(rhs.shape)


class _Basis:
    """``E`` ``[N, path]``, ``conj(E)`` and ``E^H E`` (and, once asked for, its inverse); shared by
    the callers at the same delays, so never written to."""

    __slots__ = ("_inv", "e", "ec", "gram")

    def __init__(self, e: np.ndarray, ec: np.ndarray | None = None, gram: np.ndarray | None = None):
        self.e = e
        self.ec = e.conj() if ec is None else ec
        self.gram = self.ec.T @ e if gram is None else gram
        self._inv = None

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        return _solve_gram(self.gram, rhs)

    def gram_inv(self) -> np.ndarray:
        if self._inv is None:
            self._inv = self.solve(np.eye(self.gram.shape[0], dtype=np.complex128))
        return self._inv
