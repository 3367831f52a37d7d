"""The channel table of an emulated capture (``write_emulated_capture`` is in ``sdr.emulator.capture``)."""

from __future__ import annotations

from typing import Any

from captures.format import ChannelInfo
from dsp.waveform import WaveformConfig


def channels_for(wf: WaveformConfig, bands: tuple[str, ...] | list[str]) -> list[ChannelInfo]:
    """One channel per band at the waveform's centre for it, no gain, antenna ``emulated``."""
    centers = wf.band_centers_hz
    return [ChannelInfo(b, centers[b], 0.0, "emulated") for b in bands]


def __getattr__(name: str) -> Any:
    """``write_emulated_capture`` moved to :mod:`sdr.emulator.capture` (``sdr`` sits above
    ``captures``); the old name still works, imported only when asked for."""
    if name == "write_emulated_capture":
        from sdr.emulator.capture import write_emulated_capture

        return write_emulated_capture
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
