"""Multipath channels as path lists, and their frequency responses (SYSTEM.md section 1).

A channel is ``L`` paths, each with a length ``d_l`` in metres and a complex
gain ``a_l``.  Observed in a band whose RF centre is ``F``, its CFR at baseband
frequency ``f`` is ``H(f) = sum_l a_l exp(-j 2 pi (F + f) d_l / c)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.waveform import SPEED_OF_LIGHT_M_S


@dataclass(frozen=True)
class Paths:
    """``lengths_m`` and ``gains``, both ``[path]``; the first path is the line of sight."""

    lengths_m: np.ndarray
    gains: np.ndarray

    def __post_init__(self) -> None:
        lengths = np.atleast_1d(np.asarray(self.lengths_m, np.float64))
        gains = np.atleast_1d(np.asarray(self.gains, np.complex128))
        if lengths.ndim != 1 or lengths.shape != gains.shape or lengths.size == 0:
            raise ValueError(
                f"Paths: lengths_m {lengths.shape} and gains {gains.shape} must be equal, non-empty 1-D"
            )
        if not np.all(np.isfinite(lengths)) or np.any(lengths < 0):
            raise ValueError(f"Paths: lengths_m must be finite and non-negative, got {lengths}")
        if not np.all(np.isfinite(gains)):
            raise ValueError("Paths: gains must be finite")
        object.__setattr__(self, "lengths_m", lengths)
        object.__setattr__(self, "gains", gains)

    @property
    def delays_s(self) -> np.ndarray:
        return self.lengths_m / SPEED_OF_LIGHT_M_S

    @property
    def los_length_m(self) -> float:
        return float(self.lengths_m[0])

    def __len__(self) -> int:
        return int(self.lengths_m.size)

    def cfr(self, freqs_hz: np.ndarray, center_hz: float) -> np.ndarray:
        """``H(f)`` at baseband ``freqs_hz`` (any shape) in a band centred on ``center_hz``."""
        f = np.asarray(freqs_hz, np.float64)
        tau = self.delays_s
        # exp(-j 2 pi (F + f) tau): the carrier term is evaluated modulo one cycle in float64
        carrier = np.exp(-2j * np.pi * np.mod(center_hz * tau, 1.0)) * self.gains
        return np.exp(-2j * np.pi * f[..., None] * tau) @ carrier

    def compound(self, other: Paths) -> Paths:
        """Cascade of two channels (convolution): ``L1 * L2`` paths, LoS first."""
        lengths = (self.lengths_m[:, None] + other.lengths_m[None, :]).ravel()
        gains = (self.gains[:, None] * other.gains[None, :]).ravel()
        return Paths(lengths, gains)

    def scaled(self, factor: complex) -> Paths:
        return Paths(self.lengths_m, self.gains * factor)

    def to_list(self) -> list[list[float]]:
        """``[[length_m, gain_re, gain_im], ...]`` (JSON friendly)."""
        pairs = zip(self.lengths_m, self.gains, strict=True)
        return [[float(d), float(a.real), float(a.imag)] for d, a in pairs]

    @classmethod
    def from_list(cls, rows: list | tuple) -> Paths:
        arr = np.asarray(rows, np.float64).reshape(-1, 3)
        return cls(arr[:, 0], arr[:, 1] + 1j * arr[:, 2])
