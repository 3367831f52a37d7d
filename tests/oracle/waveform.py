"""Numerology of the default waveform and the illumination symbol (AIR_INTERFACE.md section 1).

``bins`` and spectra are ``[N]`` arrays in natural FFT order (subcarrier ``k`` is bin
``k mod N``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPEED_OF_LIGHT_M_S = 299_792_458.0


@dataclass(frozen=True)
class Numerology:
    """The ``default`` profile, field names as in ``/config/waveform`` (FORMAT.md)."""

    working_rate_hz: float = 30.72e6
    fft_size: int = 1024
    subcarrier_min: int = -400
    subcarrier_max: int = 400
    null_dc: bool = True
    zc_root: int = 1
    carrier_freq_hz: float = 915e6
    tag_shift_hz: float = 45e6
    tag_symbol_rate_baud: float = 2000.0
    preamble_barker_length: int = 13
    tag_id_bits: int = 32
    payload_bits: int = 64
    crc_bits: int = 16
    burst_period_s: float = 0.1
    cir_fft_size: int = 4096

    @property
    def subcarriers(self) -> np.ndarray:
        """Active signed subcarrier indices ``[L]``, increasing."""
        k = np.arange(self.subcarrier_min, self.subcarrier_max + 1)
        return k[k != 0] if self.null_dc else k

    @property
    def spacing_hz(self) -> float:
        return self.working_rate_hz / self.fft_size

    @property
    def freqs_hz(self) -> np.ndarray:
        """Baseband frequency of each active subcarrier ``[L]``."""
        return self.subcarriers * self.spacing_hz

    @property
    def packet_bits(self) -> int:
        return self.preamble_barker_length + self.tag_id_bits + self.payload_bits + self.crc_bits

    def band_center_hz(self, band: str) -> float:
        """RF centre of a band: ``fc``, ``fc - f_sh`` or ``fc + f_sh``."""
        sign = {"central": 0, "lower": -1, "upper": 1}[band]
        return self.carrier_freq_hz + sign * self.tag_shift_hz

    def h5_attrs(self) -> dict:
        """Every field, for ``/config/waveform``."""
        out = {"profile": "default", "version": 1, "capture_rate_hz": self.working_rate_hz}
        out.update({k: getattr(self, k) for k in self.__dataclass_fields__})
        return out


def zadoff_chu(root: int, length: int) -> np.ndarray:
    """``X_i = exp(-j pi u i (i + (L mod 2)) / L)``, ``[length]``; phase index reduced mod ``2 L``."""
    i = np.arange(length, dtype=np.int64)
    idx = (root * i * (i + length % 2)) % (2 * length)
    return np.exp(-1j * np.pi * idx / length)


def symbol_bins(num: Numerology) -> np.ndarray:
    """``X`` on all ``N`` bins ``[N]`` complex128: ZC mapped in increasing subcarrier order."""
    k = num.subcarriers
    out = np.zeros(num.fft_size, complex)
    out[k % num.fft_size] = zadoff_chu(num.zc_root, k.size)
    return out
