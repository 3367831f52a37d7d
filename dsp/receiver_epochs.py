"""The receiver's epochs: CW mode's epochs and the maths every epoch shares (aligned window
sums, the ranging epoch, the reference refreshes; SYSTEM.md section 4, steps 7-8).

:class:`EpochMaths` is the part of :class:`dsp.receiver.Receiver` that turns history windows
and per-window weights into a :class:`~dsp.results.RangingEpoch`; burst mode's packets
(:mod:`dsp.burst`) and CW mode's fixed epochs both end here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dsp.alignment import SumPart
from dsp.epoch import ranging_epoch
from dsp.phasor import cis
from dsp.references import symbol_from_cfr
from dsp.results import RangingEpoch
from dsp.tagdemod import demodulate

if TYPE_CHECKING:
    from dsp.receiver import Result


class EpochMaths:
    """CW epochs, aligned window sums, ranging epochs and reference refreshes (mixed into the
    receiver)."""

    # ----- CW mode ------------------------------------------------------------
    def _cw(self, final: bool) -> list[Result]:
        if not self._history or not any(self._ref[b] is not None for b in self.sides):
            return []  # no side band acquired: no epoch to range on
        starts, z, rows = self._stacked()
        e = self.cfg.epoch_symbols
        if self._epoch_from is None:
            self._epoch_from = int(starts[0])
        out: list[Result] = []
        while True:
            i0 = int(np.searchsorted(starts, self._epoch_from))
            avail = len(starts) - i0
            if avail < e and not (final and avail >= e // 2):
                break
            hi = i0 + min(e, avail)
            st = starts[i0:hi]
            times = (st + self.n / 2) / self.fs
            weights: dict[str, np.ndarray] = {}
            # CW: the tag's data is known (constant); cut the epoch into known "symbols" so the
            # residual-frequency search sees the phase evolve across the epoch
            n_sub = max(1, min(32, (hi - i0) // 8))
            blocks = np.zeros((n_sub, hi - i0))
            blocks[np.arange(hi - i0) * n_sub // (hi - i0), np.arange(hi - i0)] = 1.0
            dem = demodulate(
                z[:, i0:hi], self._z_noise(rows), blocks, np.ones(n_sub), times, self.cfg.phase_track_max_hz
            )
            phases = self._phases(rows, i0, hi)
            for r, b in enumerate([self.bands[i] for i in rows]):
                g = dem.gains[r]
                ph = phases[r]
                weights[b] = cis(-2 * np.pi * (ph + dem.freq_offset_hz[r] * times)) * np.conj(g) / abs(g)
                self._set_cfo(b, self.cfo_hz[b] + 0.5 * dem.freq_offset_hz[r])
            if self._windows_kept(i0, hi):
                out.append(self._epoch(i0, hi, weights, st[0] / self.fs))
            # the next window, wherever the drifting grid puts it (``+ n`` lost one window when
            # the grid stepped back a sample at an epoch's edge: about 1 % of edges at +10 ppm)
            self._epoch_from = int(st[-1]) + 1
            if hi >= len(starts):
                break
        return out

    # ----- shared epoch maths ------------------------------------------------
    def _windows_kept(self, lo: int, hi: int) -> bool:
        """Whether history windows ``lo..hi`` still have their raw samples (not look-back only)."""
        pos = 0
        for s in self._history:
            m = s.starts.size
            if pos < hi and pos + m > lo and s.block is None:
                return False
            pos += m
        return True

    def _window_sum(self, band_row: int, lo: int, hi: int, w: np.ndarray) -> np.ndarray:
        """``sum_m w[m] window[m]`` over history windows ``lo..hi`` (spanning segments), each
        window aligned to the reference frame (its fractional delay undone, dsp.tracking)."""
        parts, pos = [], 0
        for s in self._history:
            m = s.starts.size
            if pos < hi and pos + m > lo:
                a, b = max(lo - pos, 0), min(hi - pos, m)
                ws = w[pos + a - lo : pos + b - lo]
                parts.append(SumPart(s.block, band_row, a, b, ws, s.f[a:b]))
            pos += m
        return self._align.window_sum(parts, self.cfo_hz[self.bands[band_row]])

    def _epoch(self, lo: int, hi: int, side_weights: dict[str, np.ndarray], time_s: float) -> RangingEpoch:
        z0 = np.concatenate([s.z[self.c0] for s in self._history])[lo:hi]
        w0 = np.conj(z0) / np.maximum(np.abs(z0), 1e-30)
        sums = {"central": self._window_sum(self.c0, lo, hi, w0)}
        norms = {"central": float(hi - lo)}
        self._refresh_central(sums["central"] / (hi - lo))
        for b, w in side_weights.items():
            sums[b] = self._window_sum(self.bands.index(b), lo, hi, w)
            norms[b] = float(np.sum(np.abs(w) ** 2))
        return ranging_epoch(
            self.wf,
            time_s,
            hi - lo,
            sums,
            norms,
            {b: float(self.cfo_hz[b]) for b in sums},
            {b: float(self.noise_var[b]) for b in sums},
            self.cfg.methods,
            self.cfg.ir_threshold,
            self.cfg.tx_rx_distance_m,
            self.calibration,
            self.d_cal_m,
            method_params=self.cfg.method_params,
            defer=self.defer_ranging,
        )

    def _refresh_central(self, new: np.ndarray) -> None:
        """New central reference (same phase as the old one) and noise probe at the current CFO."""
        old = self._ref["central"]
        self._install("central", new * np.exp(-1j * np.angle(np.vdot(old, new))))

    def _refresh_reference(self, band: str, cfr: np.ndarray) -> None:
        """Fold one packet's (or epoch's) CFR estimate into the band's reference.

        The estimate is first projected on the tap window (:meth:`TapSpace.denoise`).  The
        k-th estimate after acquisition gets weight ``1 / (k + 1)`` (a running mean with the
        acquisition's estimate counted as one), down to ``1 - reference_forget``: at -36 dB the
        blind acquisition's reference is about 1 dB short of the channel, and a fixed 5 %
        weight took some 20 packets to recover it; a seeded reference is kept as converged.
        """
        old = self._ref[band]
        new = symbol_from_cfr(self.wf, self._space.denoise(cfr), self.cfo_hz[band])
        new = new * np.exp(-1j * np.angle(np.vdot(old, new)))
        scale = np.sqrt(np.vdot(old, old).real / max(np.vdot(new, new).real, 1e-30))
        k = self._refreshes.get(band, 0) + 1
        self._refreshes[band] = k
        a = min(self.cfg.reference_forget, k / (k + 1))
        self._install(band, a * old + (1 - a) * new * scale)
