"""A CW calibration from any registered source: measure, publish progress, save.

:func:`run_calibration` is what ``backscatter calibrate`` does once its flags are read: open the
source (``sdr/source_registry.py``), feed ``calibration.workflow.calibrate`` ``duration_s`` of
its IQ, report progress (a callback and, optionally, ``calibration`` result messages for the
GUI) and save the file.  An emulated source is set up as the calibration itself: the tag in CW
mode, line of sight, where the TX-tag-RX path is the known range (:func:`cw_scenario_defaults`,
:func:`for_calibration`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from app.progress import progress_bar
from calibration.store import Calibration, CalibrationError, save_calibration
from calibration.workflow import calibrate, settings_from_source
from dsp.errors import BackscatterError
from sdr.security import SecurityError, ServerKeys
from sdr.source_registry import SourceSettings, open_source
from sdr.sources import IQSource, chunk_iq
from sdr.transport import ResultPublisher, sc16_to_complex

Progress = Callable[[dict[str, Any]], None]


class PublishError(BackscatterError, RuntimeError):
    """Calibration progress cannot be published on the endpoint asked for."""


def cw_scenario_defaults(tx_rx_distance_m: float, known_range_m: float) -> dict[str, object]:
    """``ScenarioConfig`` values of a line-of-sight calibration: TX at the origin, RX at
    ``tx_rx_distance_m`` on the x axis, the tag where the TX-tag-RX path is ``known_range_m``
    (metres), no NLoS paths and 1 s of signal (the scenario file and flags still override them)."""
    d0 = tx_rx_distance_m
    half = math.sqrt(max((known_range_m / 2) ** 2 - (d0 / 2) ** 2, 0.0))
    return {
        "duration_s": 1.0,
        "n_nlos": 0,
        "tx_pos_m": (0.0, 0.0),
        "rx_pos_m": (d0, 0.0),
        "tag_pos_m": (d0 / 2, half),
    }


def for_calibration(settings: SourceSettings) -> SourceSettings:
    """``settings`` with an emulated scenario's tag in CW mode (other sources unchanged)."""
    scenario = getattr(settings, "scenario", None)
    if scenario is None:
        return settings
    return dataclasses.replace(settings, scenario=scenario.replace(mode="cw"))  # type: ignore[type-var]


@dataclass(frozen=True, kw_only=True)
class CalibrationJob:
    """One calibration: save to ``out`` (replacing it when ``overwrite``) what ``duration_s``
    seconds of CW signal measure with the TX-tag-RX path ``known_range_m`` and the TX-RX distance
    ``tx_rx_distance_m`` (metres).  ``publish``: also send ``calibration`` messages on this
    results endpoint, with ``server_keys`` or ``insecure`` consent; ``show_progress``: a
    progress bar on stderr."""

    out: Path
    known_range_m: float
    tx_rx_distance_m: float
    duration_s: float = 1.0
    overwrite: bool = False
    publish: str | None = None
    server_keys: ServerKeys | None = None
    insecure: bool = False
    show_progress: bool = True


def final_fields(state: str, message: str, cal: Calibration | None = None) -> dict[str, Any]:
    """The fields of the last ``calibration`` message (``done`` or ``failed``)."""
    q = cal.quality if cal is not None else {}
    return {
        "time_s": 0.0,
        "state": state,
        "progress": 1.0,
        "symbols": int(q.get("symbols", 0)),
        "group_delay_s": dict(cal.group_delay_s) if cal is not None else {},
        "ripple_deg": dict(q.get("ripple_deg", {})),
        "snr_db": dict(q.get("snr_db", {})),
        "d_cal_m": dict(cal.d_cal_m) if cal is not None else {},
        "file": None,
        "message": message,
    }


def calibration_summary(cal: Calibration, out: Path) -> dict[str, Any]:
    """What ``calibrate --json`` prints: the file, the source, the geometry (m), ``d_cal_m``,
    ``group_delay_s``, the quality figures, the bands and the capture rate (Hz)."""
    return {
        "file": str(out),
        "source": cal.source,
        "known_range_m": cal.known_range_m,
        "tx_rx_distance_m": cal.tx_rx_distance_m,
        "d_cal_m": cal.d_cal_m,
        "group_delay_s": cal.group_delay_s,
        "quality": cal.quality,
        "bands": [vars(b) for b in cal.settings.bands],
        "capture_rate_hz": cal.settings.capture_rate_hz,
    }


def complex_chunks(source: IQSource) -> Iterator[tuple[Any, int]]:
    """``(iq, lost_before)`` per chunk, ``iq`` complex ``[channel, sample]`` (sc16 converted)."""
    for chunk in source:
        iq = chunk_iq(chunk)
        yield (sc16_to_complex(iq) if iq.dtype.kind == "i" else iq), chunk.lost_before


def _publisher(job: CalibrationJob) -> ResultPublisher | None:
    if not job.publish:
        return None
    try:
        return ResultPublisher(job.publish, server_keys=job.server_keys, insecure=job.insecure)
    except (SecurityError, zmq.ZMQError) as exc:
        raise PublishError(f"cannot publish on {job.publish}: {exc}") from None


def run_calibration(
    settings: SourceSettings, job: CalibrationJob, *, on_progress: Progress | None = None
) -> Calibration:
    """Calibrate on the source ``settings`` describe and save the file; ``on_progress`` gets
    every ``calibration`` message's fields, the final ``done`` ones (with ``file``) included.

    Raises ``CalibrationError`` when nothing usable was measured (a ``failed`` message is
    published first), or the errors of the source and the publisher.
    """
    source = open_source(settings)
    pub = None
    try:
        pub = _publisher(job)

        def progress(fields: dict[str, Any]) -> None:
            if pub is not None:
                pub.send("calibration", fields, {})
            if on_progress is not None:
                on_progress(fields)

        cal = _measure(source, job, progress, pub)
        save_calibration(job.out, cal, force=job.overwrite)
        done = final_fields("done", f"saved {job.out}", cal)
        done["file"] = str(job.out)
        progress(done)
        return cal
    finally:
        source.close()
        if pub is not None:
            pub.close()


def _measure(
    source: IQSource, job: CalibrationJob, progress: Progress, pub: ResultPublisher | None
) -> Calibration:
    radio = settings_from_source(source)
    total = int(job.duration_s * radio.capture_rate_hz)
    with progress_bar(total, "calibrate", enabled=job.show_progress) as bar:

        def chunks() -> Iterator[tuple[Any, int]]:
            for iq, lost in complex_chunks(source):
                bar.update(iq.shape[1])
                yield iq, lost

        try:
            return calibrate(
                chunks(),
                radio,
                job.known_range_m,
                job.tx_rx_distance_m,
                job.duration_s,
                progress=progress,
                source=f"{source.name} ({getattr(source, 'path', '')})".replace(" ()", ""),
            )
        except CalibrationError as exc:
            if pub is not None:
                pub.send("calibration", final_fields("failed", str(exc)), {})
            raise
