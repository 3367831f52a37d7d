"""Ranging methods, one per module, behind :mod:`dsp.ranging.base`'s registry."""

from dsp.ranging import ir_first, music, nomp, nomp_product  # noqa: F401  (registers the methods)
from dsp.ranging.base import (
    REGISTRY,
    RangingMethod,
    bistatic_range_m,
    combine_ranges,
    get_method,
    implausibility,
)

__all__ = ["REGISTRY", "RangingMethod", "bistatic_range_m", "combine_ranges", "get_method", "implausibility"]
