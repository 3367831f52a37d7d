"""Write an emulated scenario straight into a capture file (``backscatter emulate``).

It lives with the emulator, not in ``captures``: ``sdr`` sits above ``captures`` (it writes and
replays captures), so the capture format never needs the emulator.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from captures.emulated import channels_for
from captures.writer import CaptureWriter
from dsp.waveform import WaveformConfig
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig


def write_emulated_capture(
    path: str | os.PathLike,
    wf: WaveformConfig,
    sc: ScenarioConfig,
    datatype: str = "ci16_le",
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Emulator:
    """Emulate ``sc`` and write it, with its ground truth and gap annotations, to ``path``."""
    emu = Emulator(wf, sc)
    with CaptureWriter(
        path,
        emu.wf,
        channels_for(emu.wf, sc.bands),
        emu.rate_hz,  # the profile's capture rate
        datatype=datatype,
        overwrite=overwrite,
        time_first_sample_s=time.time(),
        description=f"emulated scenario, seed {sc.seed}, mode {sc.mode}",
        recorder="backscatter emulate",
    ) as w:
        w.write_truth(emu.truth, sc.to_json())
        for blk in emu.blocks():
            if blk.lost_before:
                w.add_gap(blk.lost_before)
            w.append(blk.iq)
            if progress:
                progress(blk.iq.shape[1] + blk.lost_before)
    return emu
