"""Names and rules of the HDF5 capture format (documented in ``captures/FORMAT.md``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.bands import BANDS
from dsp.errors import BackscatterError
from dsp.sc16 import sc16_to_complex64

FORMAT_NAME = "backscatter-capture"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
DATATYPES = ("ci16_le", "cf32_le")
BAND_NAMES = BANDS  # dsp/bands.py
CI16_FULL_SCALE = 32767.0
CHUNK_SAMPLES = 1 << 16


class CaptureError(BackscatterError):
    """A capture file is missing, malformed or corrupt.

    ``file`` is the file path, ``where`` the path inside it ("/" for the file itself),
    ``problem`` what is wrong.  The message names all three.
    """

    def __init__(self, file: str, where: str, problem: str):
        self.file, self.where, self.problem = str(file), where, problem
        super().__init__(f"{self.file}:{where}: {problem}")


@dataclass(frozen=True)
class ChannelInfo:
    """One RX channel: its band, RF centre, gain and antenna."""

    band: str
    center_freq_hz: float
    gain_db: float = 0.0
    antenna: str = ""


def ci16_to_complex(pairs: np.ndarray) -> np.ndarray:
    """int16 pairs ``[..., sample, 2]`` to complex64 ``[..., sample]`` (32767 = 1.0), in one pass."""
    return sc16_to_complex64(pairs)


def complex_to_ci16(iq: np.ndarray) -> np.ndarray:
    """complex ``[..., sample]`` to int16 pairs ``[..., sample, 2]``, rounded and clipped."""
    v = np.ascontiguousarray(iq, np.complex64).view(np.float32) * np.float32(CI16_FULL_SCALE)
    np.rint(v, out=v)
    np.clip(v, -32768, 32767, out=v)
    return v.astype(np.int16).reshape(*iq.shape, 2)
