"""Moved to :mod:`dsp.truth` (below both ``sdr`` and ``captures``); this name stays for older imports."""

from dsp.truth import GroundTruth

__all__ = ["GroundTruth"]
