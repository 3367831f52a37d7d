"""UHD support code for ``sdr.uhd_source``: its errors, stream events, the guarded ``uhd`` import
and the waveform <-> radio channel checks (nothing here touches a device)."""

from __future__ import annotations

import contextlib
import io
import math
import sys
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from dsp.config_base import ConfigError
from dsp.errors import BackscatterError
from dsp.waveform import WaveformConfig
from sdr.radio_config import RadioConfig

#: what numpy prints when a module built for numpy 1.x is imported under numpy 2
NUMPY_ABI_MARKERS = ("_ARRAY_API not found", "compiled using NumPy 1.x")
INSTALL_HINT = (
    "Install UHD's Python API with `sudo apt-get install python3-uhd uhd-host` (pip has no build "
    "for this platform) and run from a virtual environment that sees /usr/lib/python3/dist-packages "
    "(e.g. `/usr/bin/python3 -m venv --system-site-packages`) with numpy<2: Debian's UHD 4.3 is "
    "compiled against numpy 1.x."
)


class UHDError(BackscatterError, RuntimeError):
    """Base of the UHD source's errors."""


class UHDUnavailableError(UHDError):
    """The ``uhd`` Python module cannot be imported."""


class UHDSetupError(UHDError):
    """The radio could not be configured (lock, rate, ...)."""


class UHDStreamError(UHDError):
    """Streaming failed beyond the bounded retries (timeouts, late commands)."""


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One metadata event: ``kind`` is ``lost``, ``overflow``, ``sequence_error``,
    ``late_command``, ``timeout``, ``broken_chain``, ``alignment``, ``bad_packet``,
    ``time_error``, ``error`` or ``stop_error``.

    ``capture_index`` is the stream index where it applies (for ``lost``: the first
    sample after the gap), ``time_s`` the device time when the metadata had one.
    """

    kind: str
    capture_index: int
    time_s: float | None = None
    samples_lost: int = 0
    detail: str = ""


def import_uhd() -> ModuleType:
    """Import UHD's Python module, or raise ``UHDUnavailableError`` saying how to install it.

    A UHD build compiled against numpy 1.x still imports under numpy 2 after printing
    ``_ARRAY_API not found`` (its array calls are then unusable): that is refused too.
    """
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            import uhd  # imported here only: the rest of the project never needs it
    except (ImportError, AttributeError) as exc:
        hint = ""
        if int(np.__version__.split(".")[0]) >= 2:
            hint = f" This interpreter has numpy {np.__version__}."
        raise UHDUnavailableError(
            f"cannot import the UHD Python module 'uhd' ({exc}). {INSTALL_HINT}{hint}"
        ) from exc
    printed = captured.getvalue()
    if any(marker in printed for marker in NUMPY_ABI_MARKERS):
        raise UHDUnavailableError(
            f"the UHD Python module was compiled against numpy 1.x and cannot pass arrays with "
            f"numpy {np.__version__}. {INSTALL_HINT}"
        )
    if printed:
        sys.stderr.write(printed)
    return uhd


def waveform_for_radio(wf: WaveformConfig, radio: RadioConfig) -> WaveformConfig:
    """``wf`` with its carrier, tag shift and capture rate taken from ``radio``'s channels."""
    centers = {ch.band: ch.rf_center_hz for ch in radio.channels}
    carrier = centers["central"]
    shifts = []
    for band, sign in (("lower", -1.0), ("upper", 1.0)):
        if band in centers:
            shift = sign * (centers[band] - carrier)
            if shift <= 0:
                raise ConfigError(
                    f"RadioConfig.channels: the {band} band at {centers[band]:.9g} Hz is on the wrong side "
                    f"of the central band at {carrier:.9g} Hz"
                )
            shifts.append(shift)
    if len(shifts) == 2 and abs(shifts[0] - shifts[1]) > 1.0:
        raise ConfigError(
            f"RadioConfig.channels: side bands are not symmetric about the central band "
            f"(-{shifts[0]:.9g} Hz, +{shifts[1]:.9g} Hz)"
        )
    changes: dict[str, float] = {}
    if carrier != wf.carrier_freq_hz:
        changes["carrier_freq_hz"] = carrier
    if shifts and shifts[0] != wf.tag_shift_hz:
        changes["tag_shift_hz"] = shifts[0]
    if radio.rate_hz != wf.capture_rate_hz:
        changes["capture_rate_hz"] = radio.rate_hz
    return wf.replace(**changes) if changes else wf


def check_radio_matches_waveform(radio: RadioConfig, wf: WaveformConfig) -> None:
    """Raise ``ConfigError`` unless the radio receives ``wf``'s bands at ``wf.capture_rate_hz``."""
    if not math.isclose(radio.rate_hz, wf.capture_rate_hz, rel_tol=1e-9):
        raise ConfigError(
            f"RadioConfig.channels[0].rate_hz = {radio.rate_hz!r} differs from the waveform's "
            f"capture_rate_hz {wf.capture_rate_hz!r}"
        )
    want = wf.band_centers_hz
    for i, ch in enumerate(radio.channels):
        if abs(ch.rf_center_hz - want[ch.band]) > 1.0:
            raise ConfigError(
                f"RadioConfig.channels[{i}].rf_center_hz = {ch.rf_center_hz!r}: the waveform puts the "
                f"{ch.band} band at {want[ch.band]!r} Hz (carrier {wf.carrier_freq_hz!r}, "
                f"tag shift {wf.tag_shift_hz!r})"
            )
