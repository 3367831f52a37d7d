"""MUSIC delay estimation on the CFR of one band (SYSTEM.md section 5).

The CFR on the active subcarriers is ``H[k] = sum_l a_l exp(-j 2 pi k df tau_l) + w[k]``.
Sub-vectors of ``L`` adjacent subcarriers all share the steering vector
``a(tau)[m] = exp(-j 2 pi m df tau)``, ``m = 0..L-1`` (the offset of the first
subcarrier only rotates each path's gain), so their sample covariance, averaged
with its forward-backward (conjugate, reversed) copy, restores the rank that
coherent paths destroy.

**DC hole.**  Spatial smoothing needs uniformly spaced subcarriers.  The active
set is split into its contiguous runs (``-400..-1`` and ``1..400`` by default);
every run at least ``L`` long contributes all its sub-vectors to one pooled
covariance, so both sides of the band are used and no value is invented at DC.
Runs shorter than ``L`` are skipped.

The model order comes from MDL (or AIC) on the eigenvalues, clamped to
``[1, max_order]``.  The pseudo-spectrum ``P(tau) = 1 / norm(E_n^H a(tau))**2`` is
evaluated on the CIR grid ``tau_q = q / (K df)`` (the grid of
:func:`dsp.cir.cfr_to_cir` and :class:`~dsp.ranging.ir_first.IRFirst`) with one
zero-padded ``K``-point FFT per noise eigenvector.  The first significant peak is
the earliest of the ``order`` largest (circular) local maxima lying within
``peak_threshold_db`` of the largest; it is refined below the grid by parabolic
interpolation of the (smooth) denominator ``norm(E_n^H a(tau))**2``, repeated on
finer local grids.  Delays are in ``[0, 1 / df)`` like the CIR window.

Peak heights of ``P`` are not path powers: they grow with the SNR and depend on
how close the paths are (an 80 dB CFR put a line of sight 30 dB below a nearby
reflection's peak).  The model order is therefore the main guard against
spurious peaks, and the default threshold (50 dB) only drops candidates near the
noise floor of ``P``.

The linear algebra (the smoothed covariance, its real form, the model order, the two subspaces'
denominators) is :mod:`dsp.ranging.music_subspace`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.linalg

from dsp.config_base import ConfigError
from dsp.ranging.base import RangingMethod
from dsp.ranging.ir_first import first_peak_index
from dsp.ranging.music_subspace import (
    CRITERIA,
    _forward_covariance,
    _Subspace,
    _top_eigenvectors,
    _unitary_right,
    contiguous_runs,
    estimate_order,
    real_form,
)
from dsp.ranging.params import MethodParams, param
from dsp.waveform import WaveformConfig

DEFAULT_MAX_ORDER = 32
DEFAULT_PEAK_THRESHOLD_DB = 50.0
MAX_DEFAULT_SUBVECTOR_LEN = 256
_REFINE_STEPS = 3  # parabolic refinements: on the grid, then on grids 4x and 16x finer
_CANDIDATES = 8  # ungated: grid peaks per model order whose refined heights are compared
_TINY = np.finfo(float).tiny


@dataclass(frozen=True)
class MusicEstimate:
    """One MUSIC estimate: first-path delay, model order and the intermediate results.

    ``eigenvalues`` ``[L]`` of the smoothed covariance in descending order;
    ``pseudo_spectrum`` ``[K]`` on the CIR delay grid.
    """

    delay_s: float
    order: int
    eigenvalues: np.ndarray
    pseudo_spectrum: np.ndarray


@dataclass(frozen=True)
class MusicParams(MethodParams):
    method = "music"
    subvector_len: int | None = param(
        None,
        "sub-vector length L (default: half the longest run of adjacent active subcarriers, <= 256)",
        "[2, longest run of adjacent active subcarriers]",
    )
    max_order: int = param(DEFAULT_MAX_ORDER, "clamp of the model order (at most L - 1)", ">= 1")
    criterion: str = param("mdl", "model-order criterion", "'mdl' or 'aic'")
    peak_threshold_db: float = param(
        DEFAULT_PEAK_THRESHOLD_DB,
        "how far below the pseudo-spectrum maximum the first peak may lie",
        "(0, inf) dB",
    )
    gate_cells_before: int = param(
        2, "resolution cells before IR First's first peak that MUSIC may search", "[0, 64]"
    )
    threshold: float = param(0.3, "IR First threshold of the gate (see ir_first)", "(0, 1)")

    def _validate(self) -> None:
        if self.subvector_len is not None and self.subvector_len < 2:
            self._fail("subvector_len", "must be at least 2")
        if self.max_order < 1:
            self._fail("max_order", "must be at least 1")
        if self.criterion not in CRITERIA:
            self._fail("criterion", f"must be one of {CRITERIA}")
        self._check_range("peak_threshold_db", 0.0, None, open_lo=True)
        self._check_range("gate_cells_before", 0, 64)
        if not 0 < self.threshold < 1:
            self._fail("threshold", "must be in (0, 1)")


class Music(RangingMethod):
    """MUSIC with forward-backward spatial smoothing and MDL/AIC model order.

    Parameters: :class:`MusicParams` (``backscatter methods`` lists them).  The
    receiver's IR First ``threshold`` sets the gate; pseudo-spectrum heights are not
    path amplitudes (see ``peak_threshold_db``).
    """

    name = "music"
    Params = MusicParams
    params: MusicParams

    def __init__(self, wf: WaveformConfig, params: MusicParams | None = None):
        super().__init__(wf, params)
        p = self.params
        self.runs = contiguous_runs(wf.active_subcarriers)
        longest = max(r.size for r in self.runs)
        length = (
            p.subvector_len if p.subvector_len is not None else min(longest // 2, MAX_DEFAULT_SUBVECTOR_LEN)
        )
        if not 2 <= length <= longest:
            raise ConfigError(
                f"ranging method 'music': subvector_len = {length!r} must be in [2, {longest}] "
                "(the longest run of adjacent active subcarriers)"
            )
        self.subvector_len = int(length)
        self.max_order = min(p.max_order, self.subvector_len - 1)
        self.criterion = p.criterion
        self.peak_threshold_db = p.peak_threshold_db

    def first_path_delay_s(self, cfr: np.ndarray, cir: np.ndarray | None = None) -> float:
        """Delay of the first path; ``cfr`` ``[subcarrier]`` or ``[snapshot, subcarrier]``.

        With the band's ``cir`` ``[K]``, the search is gated around IR First's first peak
        (``gate_cells_before`` resolution cells before it, default 2, and one after): MUSIC
        refines that detection and cannot jump to a spurious pseudo-spectrum peak far from any
        energy in the CIR.  Five cells before (the full ranging sweep, seed 2025) left the RMSE
        at the top SNR unchanged and brought back 15-35 m outliers below 32 dB of attenuation.
        """
        return self.estimate(cfr, cir).delay_s

    def _check(self, cfr: np.ndarray) -> np.ndarray:
        arr = np.asarray(cfr)
        n_act = len(self.wf.active_subcarriers)
        if arr.ndim not in (1, 2) or not np.issubdtype(arr.dtype, np.number):
            raise ValueError(
                f"music: cfr must be numeric [subcarrier] or [snapshot, subcarrier], got shape {arr.shape} "
                f"and dtype {arr.dtype}"
            )
        if arr.shape[-1] != n_act:
            raise ValueError(
                f"music: cfr has {arr.shape[-1]} subcarriers, the waveform has {n_act} active subcarriers"
            )
        if arr.size == 0:
            raise ValueError("music: cfr has no snapshots")
        if not np.all(np.isfinite(arr)):
            raise ValueError("music: cfr contains NaN or infinite values")
        if not np.any(arr):
            raise ValueError("music: cfr is identically zero")
        return arr.astype(np.complex128, copy=False)

    def estimate(self, cfr: np.ndarray, cir: np.ndarray | None = None) -> MusicEstimate:
        """Full estimate from ``cfr`` ``[subcarrier]`` or ``[snapshot, subcarrier]`` (``cir``: gate).

        The forward-backward covariance is centro-Hermitian, so ``Q^H R_fb Q`` is real
        (:func:`real_form`), with the same eigenvalues and eigenvectors ``Q v``: its tridiagonal
        form gives every eigenvalue (the model order) and, by inverse iteration, only the
        ``order`` signal eigenvectors (:func:`_top_eigenvectors`); the denominator comes from
        them (:class:`_Subspace`).  Against the textbook computation (product of the stacked
        sub-vectors, complex ``eigh``, one FFT per noise eigenvector) this is about 3x less work
        and agrees to rounding (``tests/test_music.py``).
        """
        arr = self._check(cfr)
        wf = self.wf
        length = self.subvector_len
        r, n_sub = _forward_covariance(arr, self.runs, length)
        real = real_form(r)  # eigenvectors of R_fb are Q v for those v of the real form
        c, d, e, tau, info = scipy.linalg.lapack.dsytrd(real, lower=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"music: dsytrd failed (info {info})")
        w = scipy.linalg.eigh_tridiagonal(d, e, eigvals_only=True, lapack_driver="sterf", check_finite=False)
        order = max(1, estimate_order(w, n_sub, self.criterion, self.max_order))
        k_fft = wf.cir_fft_size
        if order < length - order:
            signal_v = _top_eigenvectors(c, tau, d, e, order)  # [L, order]
            subspace = _Subspace(length, _unitary_right(signal_v).T.conj())
        else:
            _, v = np.linalg.eigh(real)
            subspace = _Subspace(length, None, v[:, : length - order])
        den = subspace.grid(k_fft)
        pseudo = 1.0 / den
        refined: dict[int, float] = {}

        def height(peaks: np.ndarray) -> np.ndarray:
            for q in peaks:
                refined[int(q)] = self._refine(subspace, den, int(q))
            taus = np.array([refined[int(q)] for q in peaks])
            return 1.0 / np.maximum(subspace.at(taus, wf.subcarrier_spacing_hz), _TINY)

        q = self._first_peak(pseudo, order, self._gate(cir, k_fft), height)
        delay = refined[q] if q in refined else self._refine(subspace, den, q)
        return MusicEstimate(delay, order, w[::-1].copy(), pseudo)

    def _gate(self, cir: np.ndarray | None, k_fft: int) -> tuple[int, np.ndarray] | None:
        """IR First's first-peak index and the grid indices MUSIC may pick from, or ``None``."""
        if cir is None:
            return None
        mag = np.abs(np.asarray(cir))
        if mag.shape != (k_fft,) or not np.all(np.isfinite(mag)) or not mag.any():
            return None
        q_ir = first_peak_index(mag, self.params.threshold)
        cell = int(np.ceil(k_fft / len(self.wf.active_subcarriers)))  # grid bins per 1 / B_occ
        before = self.params.gate_cells_before
        return q_ir, np.arange(q_ir - before * cell, q_ir + cell + 1) % k_fft

    def _first_peak(
        self,
        pseudo: np.ndarray,
        order: int,
        gate: tuple[int, np.ndarray] | None = None,
        height: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> int:
        """Earliest of the ``order`` highest circular local maxima within the threshold of the top
        (inside the gate when there is one; IR First's own peak when MUSIC has none there).

        ``height`` gives the peaks' heights off the grid (grid indices ``[peak]`` in, heights out;
        default: the grid values).  At high SNR a path's peak is narrower than a grid step, so
        its grid value may lie tens of dB below its height and below a sidelobe's: ranked on the
        grid, a path half a step off it lost to a sidelobe 15 m early (docs/MUTATION.md, session
        11).  Ungated, only the ``_CANDIDATES x order`` highest grid peaks are measured."""
        peaks = np.flatnonzero((pseudo >= np.roll(pseudo, 1)) & (pseudo > np.roll(pseudo, -1)))
        if gate is not None:
            q_ir, allowed = gate
            peaks = np.intersect1d(peaks, allowed)
            if peaks.size == 0:
                return q_ir
        elif peaks.size == 0:  # flat spectrum
            return int(np.argmax(pseudo))
        else:
            peaks = peaks[np.argsort(pseudo[peaks])[::-1][: _CANDIDATES * order]]
        h = pseudo[peaks] if height is None else np.asarray(height(peaks), float)
        top = np.argsort(h)[::-1][:order]
        peaks, h = peaks[top], h[top]
        chosen = peaks[h >= h[0] * 10 ** (-self.peak_threshold_db / 10)]
        if gate is None:
            return int(chosen.min())
        pos = {int(q): i for i, q in enumerate(allowed)}  # earliest in the gate's own order (it may wrap)
        return int(min(chosen, key=lambda q: pos[int(q)]))

    def _refine(self, subspace: _Subspace, den: np.ndarray, q: int) -> float:
        """Sub-grid minimum of the denominator near grid index ``q``, in ``[0, 1 / df)``."""
        wf = self.wf
        step = wf.cir_grid_step_s
        k_fft = den.size
        y = den[[(q - 1) % k_fft, q, (q + 1) % k_fft]]
        tau, h = q * step, step
        for i in range(_REFINE_STEPS):
            if i > 0:
                y = subspace.at(tau + np.array([-h, 0.0, h]), wf.subcarrier_spacing_hz)
            curv = y[0] - 2 * y[1] + y[2]
            if curv <= 0:
                break
            tau += float(np.clip(0.5 * (y[0] - y[2]) / curv, -1.0, 1.0)) * h
            h /= 4
        return float(np.mod(tau, k_fft * step))
