"""The source registry (sdr/source_registry.py): kinds by name, settings from flags, a new kind
added as the ARCHITECTURE.md guide says, and the live-stream source (sdr/stream_source.py)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from backscatter import cli
from dsp.waveform import get_profile
from sdr.loop_source import LoopSettings
from sdr.source_registry import (
    REGISTRY,
    SourceError,
    SourceKind,
    SourceSettings,
    get_kind,
    kind_of,
    open_source,
    settings_from_args,
    source_names,
)
from sdr.sources import Chunk, EmulatorSettings, ReplaySettings
from sdr.stream_source import StreamSource
from sdr.transport import IQPublisher
from sdr.uhd_cli import UHDSettings

CHANNELS = [("central", 915e6), ("upper", 960e6)]


def _parse(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def test_the_kinds_and_the_source_choices():
    assert source_names(restream=True) == ["emulator", "replay", "uhd"]
    assert source_names() == ["emulator", "replay", "uhd", "stream"]
    assert set(REGISTRY) == {"emulator", "loop", "replay", "uhd", "stream"}
    assert get_kind("uhd").live and get_kind("stream").live and not get_kind("emulator").live
    with pytest.raises(SourceError, match="unknown source 'usrp'"):
        get_kind("usrp")


def test_settings_are_typed_and_frozen_from_the_flags(tmp_path):
    s = settings_from_args(_parse("stream", "--seed", "3"))
    assert isinstance(s, EmulatorSettings) and s.scenario.seed == 3 and s.scenario.duration_s == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.profile = "x"  # type: ignore[misc]
    loop = settings_from_args(_parse("stream", "--loop-s", "0.1", "--duration-s", "0.3"))
    assert isinstance(loop, LoopSettings) and kind_of(loop).name == "loop"
    assert (loop.loop_s, loop.duration_s, loop.scenario.duration_s) == (0.1, 0.3, 0.1)
    replay = settings_from_args(_parse("stream", "--source", "replay", "--file", str(tmp_path / "c.h5")))
    assert isinstance(replay, ReplaySettings) and replay.path == tmp_path / "c.h5"
    uhd = settings_from_args(_parse("stream", "--source", "uhd", "--gain-db", "12", "--rx-bands", "central"))
    assert isinstance(uhd, UHDSettings) and uhd.gain_db == 12.0 and uhd.rx_bands == ("central",)
    radio, wf = uhd.radio()
    assert [c.band for c in radio.channels] == ["central"] and wf == get_profile("default")
    with pytest.raises(SourceError, match="--source replay needs --file"):
        settings_from_args(_parse("stream", "--source", "replay"))
    with pytest.raises(SourceError, match="--file is only for --source replay, not uhd"):
        settings_from_args(_parse("stream", "--source", "uhd", "--file", "x.h5"))
    with pytest.raises(SourceError, match="--source stream needs --connect"):
        settings_from_args(_parse("calibrate", "--source", "stream", "--known-range-m", "30", "--out", "x"))


def test_a_new_kind_is_one_class_and_its_registration():
    @dataclass(frozen=True, kw_only=True)
    class ToneSettings(SourceSettings):
        kind: ClassVar[str] = "tone"
        n_samples: int = 100

    class ToneSource:
        name, is_live, channels = "tone", False, CHANNELS[:1]
        waveform = get_profile("default")
        capture_rate_hz = waveform.capture_rate_hz

        def __init__(self, n: int) -> None:
            self.n = n

        def __iter__(self) -> Iterator[Chunk]:
            yield Chunk(np.ones((1, self.n), np.complex64), 0, 0.0)

        def stop(self) -> None:
            pass

        def close(self) -> None:
            pass

    class ToneKind(SourceKind):
        name = "tone"
        Settings = ToneSettings

        @classmethod
        def settings_from_args(cls, args, *, scenario_defaults=None) -> ToneSettings:
            return ToneSettings(n_samples=args.chunk_samples)

        @classmethod
        def open(cls, settings, stop=None) -> ToneSource:
            return ToneSource(settings.n_samples)

    try:
        assert "tone" in source_names(restream=True)
        args = _parse("stream", "--chunk-samples", "7")
        args.source = "tone"  # the parser above was built before the kind existed
        source = open_source(settings_from_args(args))
        assert [c.n_samples for c in source] == [7]
    finally:
        del REGISTRY["tone"]


def test_a_live_stream_is_a_source(tmp_path):
    wf = get_profile("default")
    ep = f"ipc://{tmp_path}/iq"
    pub = IQPublisher(ep, capture_rate_hz=wf.capture_rate_hz, channels=CHANNELS, waveform=wf,
                      source="emulator", mode="push", fmt="fc32")  # fmt: skip
    rng = np.random.default_rng(1)
    sent = [(rng.standard_normal((2, 500)) + 1j).astype(np.complex64) for _ in range(3)]

    def send() -> None:
        for k, iq in enumerate(sent):
            pub.send(iq, 500 * k + (9 if k == 2 else 0), k / 10, 9 if k == 2 else 0)

    t = threading.Thread(target=send)
    t.start()
    try:
        src = StreamSource(ep, mode="pull", idle_timeout_s=1.0)
        assert src.channels == CHANNELS and src.capture_rate_hz == wf.capture_rate_hz
        got = list(src)
        src.close()
    finally:
        t.join()
        pub.close(linger_s=0)
    assert [(c.capture_index, c.lost_before) for c in got] == [(0, 0), (500, 0), (1009, 9)]
    for c, iq in zip(got, sent, strict=True):
        np.testing.assert_array_equal(c.iq, iq)
    with pytest.raises(SourceError, match="no IQ from"):
        StreamSource(f"ipc://{tmp_path}/silent", first_timeout_s=0.2)


def test_calibrate_from_a_live_stream(tmp_path, capsys):
    """``calibrate --source stream`` measures the stream it connects to (the emulated CW set-up
    a streamer sends), not an emulator of its own."""
    from app.calibrate import cw_scenario_defaults
    from calibration.store import load_calibration

    scenario = tmp_path / "cw.json"
    scenario.write_text(json.dumps({**cw_scenario_defaults(20.0, 33.0), "mode": "cw", "circuitry_seed": 7}))
    ep = f"ipc://{tmp_path}/iq"
    streamer = threading.Thread(
        target=cli.main,
        args=(["stream", "--scenario", str(scenario), "--duration-s", "0.6", "--bind", ep,
               "--wait-subscriber-s", "30"],),
    )  # fmt: skip
    streamer.start()
    try:
        out = tmp_path / "cal.h5"
        argv = ["calibrate", "--source", "stream", "--connect", ep, "--known-range-m", "33",
                "--tx-rx-distance-m", "20", "--duration-s", "0.25", "--out", str(out), "--json"]  # fmt: skip
        assert cli.main(argv) == 0
    finally:
        streamer.join(60)
    cal = load_calibration(out)
    assert cal.source == f"stream ({ep})"
    assert cal.quality["epochs"] > 0 and set(cal.d_cal_m) == {"lower", "upper"}
