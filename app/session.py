"""A receiver session: the settings a user gives, turned into a configured, calibrated receiver.

:class:`ReceiverSettings` holds what ``replay``, ``demo``, ``worker``, ``gui --replay``, the
sweeps and the benches let a user choose: ranging methods, the TX-RX distance ``d_0``, the tag
mode, a ``ReceiverConfig`` JSON file, a calibration (a file, one in hand, or the emulator's
truth) and whether to count bit errors against a known truth.  It validates itself on
construction and names the field it refuses.

:func:`open_receiver` is the one place a :class:`~dsp.receiver.Receiver` is built for a stream
(calibration/workflow.py builds its own uncalibrated CW receiver, one floor below): the stream
is described by its :class:`~calibration.store.RadioSettings` (waveform, capture rate, bands
and RF centres: also what a calibration file is checked against), plus its ground truth when
it has one (an emulated capture's :class:`~dsp.truth.GroundTruth` or a stream's
:class:`~sdr.stream_truth.StreamTruth`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from calibration.store import BandSetting, Calibration, RadioSettings
from calibration.workflow import apply_calibration
from dsp.config_base import ConfigError
from dsp.ranging import REGISTRY
from dsp.receiver import Receiver
from dsp.receiver_config import ReceiverConfig
from dsp.truth import GroundTruth
from dsp.waveform import WaveformConfig
from sdr.stream_truth import StreamTruth

TAG_MODES = ("burst", "cw")
MAX_DISTANCE_M = 1e5  # ReceiverConfig's bound on tx_rx_distance_m

Truth = GroundTruth | StreamTruth


class SessionError(ConfigError):
    """Receiver settings that cannot work, a settings file that cannot be read, or a stream the
    receiver refuses; the message names the field, the file or the stream."""


@dataclass(frozen=True)
class ReceiverSettings:
    """What a user chooses about a receiver; ``None`` leaves the choice to the stream or the defaults.

    ``methods``: ranging methods (the registry's names); ``tx_rx_distance_m``: the known
    ``d_0`` (default: the truth's, else none); ``tag_mode``: ``burst`` or ``cw`` (default: the
    stream's, else the config's); ``receiver_config``: a JSON file of ``ReceiverConfig`` keys,
    which the three before override; ``calibration``: a calibration file (loaded and checked
    against the stream) or a :class:`~calibration.store.Calibration` in hand; or
    ``truth_calibration``: divide out an emulated stream's true circuitry responses;
    ``truth_packets``: count each packet's bit errors against the truth when there is one.
    """

    methods: tuple[str, ...] | None = None
    tx_rx_distance_m: float | None = None
    tag_mode: str | None = None
    receiver_config: Path | None = None
    calibration: Path | Calibration | None = None
    truth_calibration: bool = False
    truth_packets: bool = True

    def _fail(self, name: str, why: str) -> None:
        raise SessionError(f"ReceiverSettings.{name}: {why}")

    def __post_init__(self) -> None:
        if self.methods is not None:
            if isinstance(self.methods, str) or not all(isinstance(m, str) for m in self.methods):
                self._fail("methods", f"must be a sequence of method names, got {self.methods!r:.60}")
            methods = tuple(self.methods)
            unknown = [m for m in methods if m not in REGISTRY]
            if unknown or not methods:
                self._fail("methods", f"unknown ranging method(s) {unknown}; known: {sorted(REGISTRY)}")
            object.__setattr__(self, "methods", methods)
        d0 = self.tx_rx_distance_m
        if d0 is not None:
            if isinstance(d0, bool) or not isinstance(d0, (int, float)) or not math.isfinite(d0):
                self._fail("tx_rx_distance_m", f"must be a finite number of metres, got {d0!r:.40}")
            if not 0 <= d0 < MAX_DISTANCE_M:
                self._fail("tx_rx_distance_m", f"must be in [0, {MAX_DISTANCE_M:g}) m, got {d0!r}")
            object.__setattr__(self, "tx_rx_distance_m", float(d0))
        if self.tag_mode is not None and self.tag_mode not in TAG_MODES:
            self._fail("tag_mode", f"must be one of {TAG_MODES}, got {self.tag_mode!r:.40}")
        for name, kinds in (("receiver_config", Path), ("calibration", Path | Calibration)):
            v = getattr(self, name)
            if isinstance(v, str):
                object.__setattr__(self, name, Path(v))
            elif v is not None and not isinstance(v, kinds):
                self._fail(name, f"must be a file path, got {type(v).__name__}")
        for name in ("truth_calibration", "truth_packets"):
            if not isinstance(getattr(self, name), bool):
                self._fail(name, f"must be true or false, got {getattr(self, name)!r:.40}")
        if self.truth_calibration and self.calibration is not None:
            self._fail("calibration", "give a calibration or truth_calibration, not both")

    @classmethod
    def from_args(cls, args: Any, **changes: Any) -> ReceiverSettings:
        """From a command line's namespace (``--method``, ``--tx-rx-distance-m``, ``--tag-mode``,
        ``--receiver-config``, ``--calibration``, ``--truth-calibration``; absent ones are ``None``)."""
        fields = {
            "methods": getattr(args, "method", None),
            "tx_rx_distance_m": getattr(args, "tx_rx_distance_m", None),
            "tag_mode": getattr(args, "tag_mode", None),
            "receiver_config": getattr(args, "receiver_config", None),
            "calibration": getattr(args, "calibration", None),
            "truth_calibration": bool(getattr(args, "truth_calibration", False)),
        }
        return cls(**{**fields, **changes})

    def replace(self, **changes: Any) -> ReceiverSettings:
        return replace(self, **changes)

    def config(self, truth: Truth | None = None, mode: str | None = None) -> ReceiverConfig:
        """The receiver configuration: the JSON file's keys, then these settings, then the stream's
        (``d_0`` from ``truth``, the tag ``mode`` it says it carries) where these leave a choice."""
        data: dict = {}
        if self.receiver_config is not None:
            try:
                data.update(json.loads(self.receiver_config.read_text()))
            except (OSError, json.JSONDecodeError) as exc:
                raise SessionError(f"{self.receiver_config}: cannot read receiver JSON: {exc}") from None
        if self.methods:
            data["methods"] = self.methods
        d0 = self.tx_rx_distance_m
        if d0 is None and truth is not None:
            d0 = truth.tx_rx_distance_m
        if d0 is not None:
            data["tx_rx_distance_m"] = d0
        if self.tag_mode or mode:
            data["tag_mode"] = self.tag_mode or mode
        try:
            return ReceiverConfig.from_dict(data)
        except ConfigError as exc:
            raise SessionError(str(exc)) from None

    @property
    def calibration_note(self) -> str | None:
        """What the summaries say calibrated the receiver."""
        if isinstance(self.calibration, Path):
            return str(self.calibration)
        if self.calibration is not None:
            return f"calibration from {self.calibration.source or 'a run'} at {self.calibration.created_utc}"
        return "emulator truth (circuitry responses divided out)" if self.truth_calibration else None


def emulated_radio(wf: WaveformConfig, bands: list[str] | tuple[str, ...], rate_hz: float) -> RadioSettings:
    """The settings of an emulated radio: each band at the waveform's centre for it."""
    return RadioSettings(wf, float(rate_hz), tuple(BandSetting(b, wf.band_centers_hz[b]) for b in bands))


def open_receiver(
    settings: ReceiverSettings,
    radio: RadioSettings,
    *,
    truth: Truth | None = None,
    mode: str | None = None,
    capture_index: int = 0,
    config: ReceiverConfig | None = None,
    where: str = "this stream",
) -> Receiver:
    """A receiver for the stream ``radio`` describes, configured and calibrated as ``settings`` say.

    ``truth``: the stream's ground truth, if any (``d_0``, the packets for bit errors, the true
    circuitry for ``truth_calibration``); ``mode``: the tag mode the stream says it carries;
    ``capture_index``: the capture-rate index of the stream's first sample (a stream joined late:
    a :class:`StreamTruth` counts its packets from sample 0); ``config``: a configuration
    already made (a worker's live one, a sweep's) instead of ``settings.config(truth, mode)``;
    ``where`` names the stream in a refused calibration.  Raises :class:`SessionError`,
    ``CalibrationError`` (a calibration file refused) or ``ReceiverError`` (bands, rates).
    """
    cfg = config if config is not None else settings.config(truth, mode)
    wf = radio.waveform
    kwargs: dict[str, Any] = {}
    if settings.truth_calibration:
        if not isinstance(truth, GroundTruth):
            raise SessionError(f"{where}: truth calibration needs an emulated stream's ground truth")
        kwargs["calibration"] = dict(truth.cfr_circuitry)
    elif isinstance(settings.calibration, Path):
        kwargs = apply_calibration(settings.calibration, radio, where)
    elif settings.calibration is not None:  # made in this process for this radio: checked all the same
        settings.calibration.check(radio, where)
        kwargs = settings.calibration.receiver_kwargs()
    if settings.truth_packets and truth is not None:
        if isinstance(truth, StreamTruth):
            kwargs["truth_packets"] = truth.truth_packets(
                round(capture_index * wf.working_rate_hz / radio.capture_rate_hz)
            )
        else:
            kwargs["truth_packets"] = (truth.packet_start_sample, truth.packet_bits)
    bands = [b.band for b in radio.bands]
    return Receiver(wf, bands, radio.capture_rate_hz, cfg, **kwargs)
