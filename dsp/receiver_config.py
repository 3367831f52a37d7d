"""Receiver configuration: one frozen, validated dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dsp.config_base import ConfigBase


@dataclass(frozen=True)
class ReceiverConfig(ConfigBase):
    """Tunables of the streaming receiver (defaults suit the ``default`` profile).

    ``tx_rx_distance_m`` is the known TX-RX distance ``d_0`` of eq. (78); when it is
    ``None`` the reported ranges are excess path lengths (``d_0 = 0``).

    Timing (dsp/tracking.py): ``cfo_max_ppm`` is the carrier-offset acquisition range
    (whole subcarriers included); ``timing_tracking`` follows the sample-clock drift with a
    second-order loop (``timing_loop_gain`` on the offset, ``timing_rate_gain`` on the rate)
    around the prior ``drift = CFO / fc``, which is kept when the drift measured at start-up
    agrees with it within ``drift_check_ppm`` and within what the measurement's own noise
    allows (else the measured drift is used);
    fractional window delays are undone (dsp/alignment.py) on ``delay_levels`` levels a
    sample for input at the working rate; for resampled input ``resampled_alignment``
    ``"kernel"`` reads each window at its delay through ``kernel_levels`` fixed kernels a
    capture sample (dsp/kernel_alignment.py), ``"polynomial"`` fits the delay by a polynomial
    of degree ``delay_poly_degree`` (also used for the start-up drift measurement).
    ``method_params`` maps a ranging method to its parameters (``{"music":
    {"gate_cells_before": 5}}``; ``backscatter methods`` lists them); ``ir_threshold``
    is passed to every method that has a ``threshold`` and is not set there.
    """

    tag_mode: str = "burst"
    segment_symbols: int = 480
    epoch_symbols: int = 1500
    acquisition_min_symbols: int = 960
    acquisition_max_symbols: int = 90_000
    acquisition_margin: float = 1.03
    tag_delay_window: tuple[int, int] = (-8, 24)
    timing_guard_samples: int = 32
    detect_threshold: float = 30.0
    preamble_match: float = 0.5
    ir_threshold: float = 0.3
    methods: tuple[str, ...] = ("ir_first", "ir_first_interp")
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    tx_rx_distance_m: float | None = None
    phase_track_max_hz: float = 4.0
    cfo_forget: float = 0.9
    reference_forget: float = 0.95
    cfo_max_ppm: float = 10.0
    timing_tracking: bool = True
    timing_loop_gain: float = 0.5
    timing_rate_gain: float = 0.05
    delay_poly_degree: int = 4
    delay_levels: int = 16
    resampled_alignment: str = "kernel"
    kernel_levels: int = 8
    drift_check_ppm: float = 0.5

    def _validate(self) -> None:
        from dsp.ranging import REGISTRY

        if self.tag_mode not in ("burst", "cw"):
            self._fail("tag_mode", "must be 'burst' or 'cw'")
        if not (16 <= self.segment_symbols <= 100_000):
            self._fail("segment_symbols", "must be in [16, 100000]")
        if self.epoch_symbols < 16:
            self._fail("epoch_symbols", "must be at least 16")
        if not (0 < self.acquisition_min_symbols <= self.acquisition_max_symbols):
            self._fail("acquisition_min_symbols", "must be positive and at most acquisition_max_symbols")
        lo, hi = self.tag_delay_window
        if not (lo < 0 < hi and hi - lo <= 256):
            self._fail("tag_delay_window", "must be (negative, positive) samples, at most 256 taps")
        if not (0 <= self.timing_guard_samples < 256):
            self._fail("timing_guard_samples", "must be in [0, 256)")
        if self.detect_threshold <= 0:
            self._fail("detect_threshold", "must be positive")
        if not (0 < self.preamble_match < 1):
            self._fail("preamble_match", "must be in (0, 1)")
        if not (0 < self.ir_threshold < 1):
            self._fail("ir_threshold", "must be in (0, 1)")
        unknown = [m for m in self.methods if m not in REGISTRY]
        if unknown or not self.methods:
            self._fail("methods", f"unknown ranging method(s) {unknown}; known: {sorted(REGISTRY)}")
        from dsp.config_base import ConfigError
        from dsp.ranging.params import validate_method_params

        try:
            params = validate_method_params(self.method_params)
        except ConfigError as exc:
            raise ConfigError(f"ReceiverConfig.method_params: {exc}") from None
        object.__setattr__(self, "method_params", params)
        if self.tx_rx_distance_m is not None and not (0 <= self.tx_rx_distance_m < 1e5):
            self._fail("tx_rx_distance_m", "must be in [0, 1e5) m")
        if not 0 < self.cfo_forget <= 1:
            self._fail("cfo_forget", "forgetting factors must be in (0, 1]")
        if not 0 <= self.reference_forget < 1:
            self._fail("reference_forget", "must be in [0, 1)")
        if not (0 <= self.cfo_max_ppm <= 100):
            self._fail("cfo_max_ppm", "must be in [0, 100] ppm of the carrier")
        if not 0 < self.timing_loop_gain <= 1:
            self._fail("timing_loop_gain", "loop gains must be in (0, 1] (offset) and [0, 0.5] (rate)")
        if not 0 <= self.timing_rate_gain <= 0.5:
            self._fail("timing_rate_gain", "must be in [0, 0.5] (the rate's loop gain)")
        if not (2 <= self.delay_poly_degree <= 8):
            self._fail("delay_poly_degree", "must be in [2, 8]")
        if not (2 <= self.delay_levels <= 1024) or self.delay_levels % 2:
            self._fail("delay_levels", "must be an even number in [2, 1024]")
        if self.resampled_alignment not in ("kernel", "polynomial"):
            self._fail("resampled_alignment", "must be 'kernel' or 'polynomial'")
        if not (1 <= self.kernel_levels <= 256):
            self._fail("kernel_levels", "must be in [1, 256]")
        if not (0 < self.drift_check_ppm <= 100):
            self._fail("drift_check_ppm", "must be in (0, 100] ppm")
