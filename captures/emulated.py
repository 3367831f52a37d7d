"""The channel table of an emulated capture (``write_emulated_capture`` is in ``sdr.emulator.capture``)."""

from __future__ import annotations

from captures.format import ChannelInfo
from dsp.waveform import WaveformConfig


def channels_for(wf: WaveformConfig, bands: tuple[str, ...] | list[str]) -> list[ChannelInfo]:
    """One channel per band at the waveform's centre for it, no gain, antenna ``emulated``."""
    centers = wf.band_centers_hz
    return [ChannelInfo(b, centers[b], 0.0, "emulated") for b in bands]
