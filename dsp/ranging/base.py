"""Common interface and name-to-class registry of ranging methods.

A method turns the CIR/CFR of one band into the delay ``t_b`` (seconds,
relative to the start of the CIR window) of its first path.  Bistatic range
(eq. (77)-(78)) is then ``mod(d_0 + (t_u - t_0) c - d_cal_u, R_max)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from dsp.ranging.params import MethodParams
from dsp.waveform import SPEED_OF_LIGHT_M_S, WaveformConfig

REGISTRY: dict[str, type[RangingMethod]] = {}


class RangingMethod(ABC):
    """One delay estimator.  Subclasses set ``name``, ``Params`` and implement :meth:`first_path_delay_s`.

    ``params`` is an instance of the method's frozen, validated ``Params``
    (:mod:`dsp.ranging.params`); :func:`get_method` builds it from keywords.
    """

    name: ClassVar[str]
    Params: ClassVar[type[MethodParams]] = MethodParams
    joint_bands: ClassVar[bool] = False  # True: :meth:`joint_delay_and_std_s` fits bands together
    product_sides: ClassVar[bool] = False  # True: :meth:`side_delay_and_std_s` fits the side bands

    def __init__(self, wf: WaveformConfig, params: MethodParams | None = None):
        if params is None:
            params = self.Params()
        if not isinstance(params, self.Params):
            raise TypeError(
                f"ranging method {self.name!r}: params must be {self.Params.__name__}, got {params!r}"
            )
        self.wf = wf
        self.params = params

    def joint_delay_and_std_s(self, cfrs: np.ndarray) -> tuple[float, float]:
        """First-path delay common to bands ``cfrs`` ``[band, subcarrier]`` (same delays, own gains)."""
        raise NotImplementedError(f"ranging method {self.name!r} does not fit bands jointly")

    def side_delay_and_std_s(self, cfrs: np.ndarray) -> tuple[float, float]:
        """First-path delay of the side bands ``cfrs`` ``[band, subcarrier]`` (one or two) fitted as
        the product ``H_1 H_2u`` of the TX-tag and tag-RX channels (``product_sides`` methods)."""
        raise NotImplementedError(f"ranging method {self.name!r} does not fit the product form")

    def delay_and_std_s(self, cfr: np.ndarray, cir: np.ndarray) -> tuple[float, float]:
        """First-path delay and its standard deviation (s; ``nan`` when the method gives none)."""
        return self.first_path_delay_s(cfr, cir), float("nan")

    def __init_subclass__(cls, **kw: object) -> None:
        super().__init_subclass__(**kw)
        if getattr(cls, "name", None):
            REGISTRY[cls.name] = cls

    @abstractmethod
    def first_path_delay_s(self, cfr: np.ndarray, cir: np.ndarray) -> float:
        """Delay of the first path; ``cfr`` ``[subcarrier]``, ``cir`` ``[K]`` (its IFFT)."""


def get_method(name: str, wf: WaveformConfig, **params: Any) -> RangingMethod:
    """Method ``name`` with keyword parameters checked by its ``Params`` (``ConfigError`` naming them)."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown ranging method {name!r}; known: {sorted(REGISTRY)}") from None
    return cls(wf, cls.Params.from_dict(params))


def bistatic_range_m(
    t_side_s: float, t_central_s: float, tx_rx_distance_m: float, d_cal_m: float, max_range_m: float
) -> float:
    """Eq. (77)-(78): TX-tag-RX path length from the side-band and central first-path delays."""
    delta = (t_side_s - t_central_s) * SPEED_OF_LIGHT_M_S - d_cal_m
    return float(np.mod(tx_rx_distance_m + delta, max_range_m))


def implausibility(range_m: float, tx_rx_distance_m: float | None, wf: WaveformConfig) -> str | None:
    """Why ``range_m`` cannot be a TX-tag-RX path length, or ``None``.

    * Shorter than the TX-RX distance ``d_0`` by more than a tenth of the resolution
      ``c / B_occ`` (the triangle inequality; the margin covers estimation noise when the tag
      sits on the TX-RX line).  Not checked when ``d_0`` is unknown (the ranges are then excess
      path lengths modulo ``R_max``).
    * Beyond half the unambiguous range ``R_max = c / df`` (eq. (78) is modulo ``R_max``): a
      first path found before the direct path's wraps to kilometres, which no room holds.
    """
    if tx_rx_distance_m is not None and range_m < tx_rx_distance_m - 0.1 * wf.resolution_m:
        return f"{range_m:.2f} m is below the TX-RX distance {tx_rx_distance_m:.2f} m"
    half = wf.max_range_m / 2
    if range_m > half:
        return f"{range_m:.0f} m is beyond half the unambiguous range, {half:.0f} m (a wrapped delay)"
    return None


def combine_ranges(ranges_m: dict[str, float], reliability: dict[str, float]) -> float:
    """Eq. (79): reliability-weighted mean of per-band ranges."""
    w = np.array([max(reliability.get(b, 0.0), 0.0) for b in ranges_m])
    r = np.array(list(ranges_m.values()))
    if w.sum() <= 0:
        return float(np.mean(r))
    return float(np.sum(w * r) / w.sum())
