"""A capture through the receiver: the receiver a capture gets, and its run and summary."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.run import Run, receive, summarise
from app.session import ReceiverSettings, SessionError, open_receiver
from calibration.workflow import settings_from_capture
from captures.read_ahead import ReadAhead
from captures.reader import Capture, open_capture
from dsp.receiver import Receiver, ReceiverError
from dsp.truth import GroundTruth

CHUNK = 1 << 18  # samples per channel read and pushed at a time

# ``progress(total_samples)`` -> a context manager giving an object with ``update(samples)``
Progress = Callable[[int], contextlib.AbstractContextManager[Any]]


def capture_receiver(
    cap: Capture, path: Path | str, settings: ReceiverSettings, truth: GroundTruth | None
) -> Receiver:
    """The receiver for an open capture with ground truth ``truth`` (``cap.truth()``): the truth's
    ``d_0`` and packets and the scenario's tag mode where ``settings`` leave them open; raises
    :class:`SessionError` (or ``CalibrationError``) naming the file."""
    mode = json.loads(cap.scenario_json).get("mode") if cap.scenario_json else None
    cfg = settings.config(truth, mode)
    if settings.truth_calibration and truth is None:
        raise SessionError(f"{path}: --truth-calibration needs a capture with ground truth")
    try:
        return open_receiver(
            settings, settings_from_capture(cap), truth=truth, config=cfg, where=f"capture {path}"
        )
    except ReceiverError as exc:
        raise SessionError(f"{path}: {exc}") from None


class _Silent:
    def update(self, n: int) -> None:
        pass


def _no_progress(total: int) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext(_Silent())


def replay_capture(
    path: Path | str, settings: ReceiverSettings, progress: Progress | None = None, read_ahead: bool = True
) -> tuple[dict, Run]:
    """The receiver over one capture: its summary (with ``file`` and ``calibration``) and the run.

    ``read_ahead``: a forked process reads the capture ahead of the receiver on the second core
    (``captures/read_ahead.py``); off where the cores are busy already (the fan-out)."""
    with open_capture(path) as cap:
        truth = cap.truth()
        rx = capture_receiver(cap, path, settings, truth)
        # int16 pairs as stored (ci16_le): the receiver reads them in place, no conversion
        with ReadAhead(cap, CHUNK) if read_ahead else _in_process(cap) as pieces:
            with (progress or _no_progress)(cap.n_samples) as bar:
                chunks = ((iq, lost) for _, iq, lost in pieces)
                run = receive(rx, chunks, cap.waveform, cap.duration_s, truth, bar.update)
    summary = summarise(run)
    summary["file"] = str(path)
    summary["calibration"] = settings.calibration_note
    return summary, run


def _in_process(cap: Capture) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext(cap.iter_chunks(CHUNK, pairs=True))


def replay_summary(path: str, settings: ReceiverSettings) -> dict:
    """One file's summary for the fan-out (a picklable module-level function): every worker
    has a core, so no reader process of its own."""
    return replay_capture(Path(path), settings, read_ahead=False)[0]
