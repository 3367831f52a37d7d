"""Calibration files: what was measured, for which settings, how well; refuse other settings.

HDF5 layout (``format = "backscatter-calibration"``, ``format_version = 1``):

* root attributes: ``waveform`` (JSON of ``WaveformConfig``), ``settings`` (JSON: per band
  ``rf_center_hz``, ``gain_db``, ``antenna``; ``capture_rate_hz``; ``device_serial``),
  ``known_range_m``, ``tx_rx_distance_m``, ``created_utc``, ``source``, ``quality`` (JSON);
* ``/bands/<band>/response``: complex128 ``[subcarrier]``, the flattened circuitry response
  (group delay removed), with attributes ``group_delay_s`` and (side bands) ``d_cal_m``;
* ``/history/group_delay_s`` ``[epoch, band]`` and its ``bands`` attribute: stability over the run.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from dsp.config_base import ConfigError
from dsp.errors import BackscatterError, OutputExistsError
from dsp.waveform import WaveformConfig
from h5safe.probe import hdf5_problem

CAL_FORMAT = "backscatter-calibration"
CAL_VERSION = 1
RF_TOLERANCE_HZ = 1.0
GAIN_TOLERANCE_DB = 0.05


class CalibrationError(BackscatterError, ValueError):
    """A calibration file cannot be read, or does not apply to these settings; says which."""


@dataclass(frozen=True)
class BandSetting:
    """One RX channel's settings that a calibration depends on."""

    band: str
    rf_center_hz: float
    gain_db: float | None = None
    antenna: str | None = None


@dataclass(frozen=True)
class RadioSettings:
    """The settings a calibration is valid for (the stream's or the capture's)."""

    waveform: WaveformConfig
    capture_rate_hz: float
    bands: tuple[BandSetting, ...]
    device_serial: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "capture_rate_hz": self.capture_rate_hz,
                "device_serial": self.device_serial,
                "bands": [vars(b) for b in self.bands],
            }
        )

    @classmethod
    def from_json(cls, waveform: WaveformConfig, text: str) -> RadioSettings:
        d = json.loads(text)
        bands = tuple(BandSetting(**b) for b in d["bands"])
        # files written before the rename call the capture rate "sample_rate_hz"
        rate = d["capture_rate_hz"] if "capture_rate_hz" in d else d["sample_rate_hz"]
        return cls(waveform, float(rate), bands, d.get("device_serial"))


@dataclass(frozen=True)
class Calibration:
    """A CW calibration: per-band flattened responses, group delays and ``d_cal_m``."""

    settings: RadioSettings
    response: dict[str, np.ndarray]
    group_delay_s: dict[str, float]
    d_cal_m: dict[str, float]
    known_range_m: float
    tx_rx_distance_m: float
    quality: dict = field(default_factory=dict)
    history_s: np.ndarray | None = None  # [epoch, band] group delays
    source: str = ""
    created_utc: str = ""

    def receiver_kwargs(self) -> dict:
        """``calibration`` and ``d_cal_m`` for :class:`dsp.receiver.Receiver`."""
        return {"calibration": dict(self.response), "d_cal_m": dict(self.d_cal_m)}

    def check(self, other: RadioSettings, where: str = "this stream") -> None:
        """Raise :class:`CalibrationError` naming the first setting of ``other`` that differs."""
        mine = self.settings
        if other.waveform != mine.waveform:
            a, b = mine.waveform.to_dict(), other.waveform.to_dict()
            diff = ", ".join(f"{k} {a[k]!r} != {b.get(k)!r}" for k in a if a[k] != b.get(k))
            raise CalibrationError(f"calibration was made for another waveform ({where}): {diff}")
        if abs(other.capture_rate_hz - mine.capture_rate_hz) > 1e-6 * mine.capture_rate_hz:
            raise CalibrationError(
                f"calibration was made at {mine.capture_rate_hz:g} S/s, "
                f"{where} runs at {other.capture_rate_hz:g} S/s"
            )
        if mine.device_serial and other.device_serial and mine.device_serial != other.device_serial:
            raise CalibrationError(
                f"calibration was made on device {mine.device_serial}, "
                f"{where} is device {other.device_serial}"
            )
        theirs = {b.band: b for b in other.bands}
        for b in mine.bands:
            o = theirs.get(b.band)
            if o is None:
                continue  # a band this stream does not have: not used
            if abs(o.rf_center_hz - b.rf_center_hz) > RF_TOLERANCE_HZ:
                raise CalibrationError(
                    f"{b.band} band: calibration made at RF centre {b.rf_center_hz:.0f} Hz, "
                    f"{where} has {o.rf_center_hz:.0f} Hz"
                )
            if (
                b.gain_db is not None
                and o.gain_db is not None
                and abs(o.gain_db - b.gain_db) > GAIN_TOLERANCE_DB
            ):
                raise CalibrationError(
                    f"{b.band} band: calibration made at gain {b.gain_db:g} dB, {where} has {o.gain_db:g} dB"
                )
            if b.antenna and o.antenna and b.antenna != o.antenna:
                raise CalibrationError(
                    f"{b.band} band: calibration made on antenna {b.antenna}, {where} uses {o.antenna}"
                )
        missing = [b for b in theirs if b not in self.response]
        if missing:
            raise CalibrationError(
                f"calibration has no response for the {', '.join(missing)} band(s) of {where}"
            )


def save_calibration(path: str | os.PathLike, cal: Calibration, force: bool = False) -> None:
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; refusing to overwrite (use --force)")
    tmp = path.with_name(path.name + ".partial")
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = CAL_FORMAT
        f.attrs["format_version"] = CAL_VERSION
        f.attrs["waveform"] = cal.settings.waveform.to_json()
        f.attrs["settings"] = cal.settings.to_json()
        f.attrs["known_range_m"] = cal.known_range_m
        f.attrs["tx_rx_distance_m"] = cal.tx_rx_distance_m
        f.attrs["created_utc"] = cal.created_utc or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        f.attrs["source"] = cal.source
        f.attrs["quality"] = json.dumps(cal.quality)
        g = f.create_group("bands")
        for band, r in cal.response.items():
            d = g.create_dataset(f"{band}/response", data=np.asarray(r, np.complex128))
            d.attrs["group_delay_s"] = cal.group_delay_s[band]
            if band in cal.d_cal_m:
                d.attrs["d_cal_m"] = cal.d_cal_m[band]
        if cal.history_s is not None:
            h = f.create_dataset("history/group_delay_s", data=cal.history_s)
            h.attrs["bands"] = list(cal.response)
    os.replace(tmp, path)  # a crash never leaves a half-written calibration under the real name


def load_calibration(path: str | os.PathLike) -> Calibration:
    """Read and validate a calibration file; every problem names the file and the field."""
    path = Path(path)

    def fail(where: str, problem: str) -> CalibrationError:
        return CalibrationError(f"{path}: {where}: {problem}")

    try:
        problem = hdf5_problem(path)  # before HDF5 reads it here: it may crash or loop on a corrupt file
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot open as HDF5: {exc}") from None
    if problem is not None:
        raise CalibrationError(f"{path}: {problem}")
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{path}: cannot open as HDF5: {exc}") from None
    with f:
        try:
            return _read(f, fail)
        except CalibrationError:
            raise
        except Exception as exc:  # h5py and numpy errors of a corrupt file still name the file
            raise CalibrationError(f"{path}: malformed calibration: {type(exc).__name__}: {exc}") from None


def _read(f: h5py.File, fail) -> Calibration:
    """The calibration in an open file (``fail(where, problem)`` makes the error)."""
    if f.attrs.get("format") != CAL_FORMAT:
        raise fail("/@format", f"is {f.attrs.get('format')!r}, not {CAL_FORMAT!r}")
    version = f.attrs.get("format_version")
    if version != CAL_VERSION:
        raise fail("/@format_version", f"is {version!r}; this build reads version {CAL_VERSION}")
    try:
        wf = WaveformConfig.from_json(str(f.attrs["waveform"]))
        settings = RadioSettings.from_json(wf, str(f.attrs["settings"]))
        quality = json.loads(str(f.attrs.get("quality", "{}")))
        known = float(f.attrs["known_range_m"])
        d0 = float(f.attrs["tx_rx_distance_m"])
    except KeyError as exc:
        raise fail(f"/@{exc.args[0]}", "missing") from None
    except (ConfigError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise fail("/@waveform or /@settings", str(exc)) from None
    if "bands" not in f or "central" not in f["bands"]:
        raise fail("/bands", "needs at least the central band's response")
    response, gd, d_cal = {}, {}, {}
    n_k = len(wf.active_subcarriers)
    for band in f["bands"]:
        d = f["bands"][band].get("response")
        if d is None or d.shape != (n_k,) or not np.iscomplexobj(d):
            raise fail(f"/bands/{band}/response", f"must be complex [{n_k}] for this waveform")
        r = d[()]
        if not np.all(np.isfinite(r)) or np.any(r == 0):
            raise fail(f"/bands/{band}/response", "has non-finite or zero values")
        response[band] = r
        gd[band] = float(d.attrs.get("group_delay_s", np.nan))
        if band != "central":
            if "d_cal_m" not in d.attrs or not np.isfinite(d.attrs["d_cal_m"]):
                raise fail(f"/bands/{band}/response@d_cal_m", "missing or not finite")
            d_cal[band] = float(d.attrs["d_cal_m"])
    hist = f["history/group_delay_s"][()] if "history/group_delay_s" in f else None
    return Calibration(
        settings,
        response,
        gd,
        d_cal,
        known,
        d0,
        quality,
        hist,
        str(f.attrs.get("source", "")),
        str(f.attrs.get("created_utc", "")),
    )
