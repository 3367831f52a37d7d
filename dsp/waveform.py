"""OFDM illumination and tag waveform: one frozen configuration and its signals.

Shapes: ``X`` is ``[subcarrier]`` over the FFT bins in natural FFT order
(bin ``k`` for ``k >= 0``, ``N + k`` for ``k < 0``); ``x`` is ``[sample]`` of
one period of ``N`` samples.  See SYSTEM.md section 2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import ClassVar

import numpy as np

from dsp.config_base import ConfigBase, ConfigError

SPEED_OF_LIGHT_M_S = 299_792_458.0
WAVEFORM_VERSION = 1


@dataclass(frozen=True)
class WaveformConfig(ConfigBase):
    """OFDM numerology, tag signalling and packet format.

    ``working_rate_hz`` is the rate the receiver works at (``fs``);
    ``capture_rate_hz`` is the radio's rate, resampled to ``fs`` when they differ.
    Configurations written before the rename name the working rate
    ``sample_rate_hz``; ``from_dict`` reads that key as ``working_rate_hz``.
    The packet is a ``preamble_barker_length``-bit Barker code, a
    ``tag_id_bits``-bit ID, ``payload_bits`` of data and a CRC-16/CCITT.
    """

    profile: str = "default"
    version: int = WAVEFORM_VERSION
    working_rate_hz: float = 30.72e6
    capture_rate_hz: float = 30.72e6
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

    RENAMED_KEYS: ClassVar[Mapping[str, str]] = {"sample_rate_hz": "working_rate_hz"}

    def _validate(self) -> None:
        if self.version != WAVEFORM_VERSION:
            self._fail("version", f"unsupported waveform version (this build reads {WAVEFORM_VERSION})")
        for name in ("working_rate_hz", "capture_rate_hz", "carrier_freq_hz", "tag_shift_hz"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                self._fail(name, "must be a positive finite number")
        if self.fft_size < 16 or self.fft_size > 1 << 16:
            self._fail("fft_size", "must be between 16 and 65536")
        half = self.fft_size // 2
        if not (-half < self.subcarrier_min < 0):
            self._fail("subcarrier_min", f"must lie in ({-half}, 0) for fft_size {self.fft_size}")
        if not (0 < self.subcarrier_max < half):
            self._fail("subcarrier_max", f"must lie in (0, {half}) for fft_size {self.fft_size}")
        if max(self.subcarrier_max, -self.subcarrier_min) > half - 2:  # dsp.references.guard_probe
            edge = "subcarrier_max" if self.subcarrier_max >= -self.subcarrier_min else "subcarrier_min"
            self._fail(
                edge,
                f"leaves no unused subcarrier between the band and Nyquist for the noise probe: "
                f"|subcarrier| must stay <= {half - 2} for fft_size {self.fft_size}",
            )
        n_act = len(self.active_subcarriers)
        if n_act < 8:
            self._fail("subcarrier_max", "fewer than 8 active subcarriers")
        if not (1 <= self.zc_root < n_act) or math.gcd(self.zc_root, n_act) != 1:
            self._fail("zc_root", f"must be in [1, {n_act}) and coprime with {n_act} active subcarriers")
        if self.tag_shift_hz < self.occupied_bandwidth_hz:
            self._fail(
                "tag_shift_hz",
                f"smaller than the occupied bandwidth {self.occupied_bandwidth_hz:.6g} Hz: "
                "the side bands would overlap the central band",
            )
        if self.tag_shift_hz >= self.carrier_freq_hz:
            self._fail("tag_shift_hz", "must be below the carrier frequency")
        if not (0 < self.tag_symbol_rate_baud < self.ofdm_symbol_rate_hz):
            self._fail(
                "tag_symbol_rate_baud",
                f"must be positive and below the OFDM symbol rate {self.ofdm_symbol_rate_hz:.6g} Hz",
            )
        if self.preamble_barker_length not in BARKER_CODES:
            known = sorted(BARKER_CODES)
            self._fail("preamble_barker_length", f"no Barker code of this length; use one of {known}")
        if not (0 <= self.tag_id_bits <= 64):
            self._fail("tag_id_bits", "must be in [0, 64]")
        if not (0 <= self.payload_bits <= 4096):
            self._fail("payload_bits", "must be in [0, 4096]")
        if self.crc_bits != 16:
            self._fail("crc_bits", "only CRC-16 is supported")
        if not (math.isfinite(self.burst_period_s) and self.burst_period_s > self.packet_duration_s):
            self._fail(
                "burst_period_s",
                f"must exceed the packet duration {self.packet_duration_s:.6g} s "
                f"({self.packet_bits} bits at {self.tag_symbol_rate_baud:g} Bd)",
            )
        if self.cir_fft_size < self.fft_size:
            self._fail("cir_fft_size", f"must be at least fft_size {self.fft_size}")
        self.resample_ratio  # noqa: B018 - raises ConfigError without a rational ratio
        if self.capture_rate_hz > 8 * self.working_rate_hz or self.capture_rate_hz * 8 < self.working_rate_hz:
            self._fail("capture_rate_hz", "must be within a factor 8 of working_rate_hz")

    # ----- derived numerology -------------------------------------------------
    @property
    def subcarrier_spacing_hz(self) -> float:
        return self.working_rate_hz / self.fft_size

    @property
    def ofdm_symbol_rate_hz(self) -> float:
        return self.subcarrier_spacing_hz

    @property
    def ofdm_symbol_duration_s(self) -> float:
        return self.fft_size / self.working_rate_hz

    @property
    def occupied_bandwidth_hz(self) -> float:
        return (self.subcarrier_max - self.subcarrier_min + 1) * self.subcarrier_spacing_hz

    @cached_property
    def active_subcarriers(self) -> np.ndarray:
        """Active subcarrier indices ``k`` (signed), ``[subcarrier]`` (read-only: computed once,
        the receiver reads it thousands of times a second)."""
        k = np.arange(self.subcarrier_min, self.subcarrier_max + 1)
        if self.null_dc:
            k = k[k != 0]
        k.setflags(write=False)
        return k

    @cached_property
    def active_bins(self) -> np.ndarray:
        """FFT bins of the active subcarriers in natural FFT order, ``[subcarrier]`` (read-only)."""
        b = np.mod(self.active_subcarriers, self.fft_size)
        b.setflags(write=False)
        return b

    @property
    def active_freqs_hz(self) -> np.ndarray:
        """Baseband frequency of each active subcarrier, ``[subcarrier]``."""
        return self.active_subcarriers * self.subcarrier_spacing_hz

    @property
    def band_centers_hz(self) -> dict[str, float]:
        return {
            "central": self.carrier_freq_hz,
            "lower": self.carrier_freq_hz - self.tag_shift_hz,
            "upper": self.carrier_freq_hz + self.tag_shift_hz,
        }

    @property
    def tag_symbol_duration_s(self) -> float:
        return 1.0 / self.tag_symbol_rate_baud

    @property
    def ofdm_symbols_per_tag_symbol(self) -> float:
        return self.tag_symbol_duration_s / self.ofdm_symbol_duration_s

    @property
    def packet_bits(self) -> int:
        return self.preamble_barker_length + self.tag_id_bits + self.payload_bits + self.crc_bits

    @property
    def packet_duration_s(self) -> float:
        return self.packet_bits / self.tag_symbol_rate_baud

    @property
    def cir_grid_step_s(self) -> float:
        return 1.0 / (self.cir_fft_size * self.subcarrier_spacing_hz)

    @property
    def cir_grid_step_m(self) -> float:
        return SPEED_OF_LIGHT_M_S * self.cir_grid_step_s

    @property
    def max_range_m(self) -> float:
        """Unambiguous range ``c / df``."""
        return SPEED_OF_LIGHT_M_S / self.subcarrier_spacing_hz

    @property
    def resolution_m(self) -> float:
        """Two-path resolution ``c / B_occ``."""
        return SPEED_OF_LIGHT_M_S / self.occupied_bandwidth_hz

    @property
    def resample_ratio(self) -> Fraction:
        """``working_rate_hz / capture_rate_hz`` as an exact small fraction (up/down)."""
        ratio = Fraction(self.working_rate_hz / self.capture_rate_hz).limit_denominator(10_000)
        if abs(float(ratio) * self.capture_rate_hz - self.working_rate_hz) > 1e-6 * self.working_rate_hz:
            raise ConfigError(
                f"WaveformConfig.capture_rate_hz = {self.capture_rate_hz!r}: no rational resampling "
                f"ratio with a denominator of at most 10000 reaches working_rate_hz {self.working_rate_hz!r}"
            )
        return ratio

    # ----- signals -----------------------------------------------------------
    @cached_property
    def zadoff_chu(self) -> np.ndarray:
        """Zadoff-Chu sequence of the active-subcarrier length, ``[subcarrier]``, complex128."""
        return zadoff_chu(self.zc_root, len(self.active_subcarriers))

    @cached_property
    def symbol_freq(self) -> np.ndarray:
        """``X[k]`` on all ``N`` bins (zero off the active set), ``[N]`` complex128."""
        X = np.zeros(self.fft_size, complex)
        X[self.active_bins] = self.zadoff_chu
        return X

    @cached_property
    def symbol_time(self) -> np.ndarray:
        """``x[n] = N**-0.5 sum_k X[k] exp(j 2 pi k n / N)``, ``[N]`` complex128."""
        return np.fft.ifft(self.symbol_freq) * math.sqrt(self.fft_size)


def zadoff_chu(root: int, length: int) -> np.ndarray:
    """Zadoff-Chu sequence ``exp(-j pi u n (n + c) / L)`` with ``c = L mod 2``, ``[length]``."""
    n = np.arange(length, dtype=np.int64)
    c = length % 2
    # reduce the phase index modulo 2L before the float multiply: exact for any length
    idx = np.mod(root * n * (n + c), 2 * length)
    return np.exp(-1j * np.pi * idx / length)


BARKER_CODES: dict[int, tuple[int, ...]] = {
    2: (1, 0),
    3: (1, 1, 0),
    4: (1, 1, 0, 1),
    5: (1, 1, 1, 0, 1),
    7: (1, 1, 1, 0, 0, 1, 0),
    11: (1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0),
    13: (1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 0, 1),
}

PROFILES: dict[str, WaveformConfig] = {
    "default": WaveformConfig(),
    "x410-62m5": WaveformConfig(profile="x410-62m5", capture_rate_hz=62.5e6),
}


def get_profile(name: str) -> WaveformConfig:
    """Return a named waveform profile, or raise ``ConfigError`` listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown waveform profile {name!r}; known profiles: {sorted(PROFILES)}") from None
