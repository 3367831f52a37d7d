"""UHD source and radio configuration, against the recorded UHD double (no hardware, no uhd)."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dsp.config_base import ConfigError
from dsp.waveform import get_profile
from sdr.radio_config import ChannelConfig, RadioConfig, load_radio_config, radio_config_for
from sdr.sources import Chunk, IQSource
from sdr.transport import as_wire_array, sc16_to_complex
from sdr.uhd_cli import add_uhd_args, make_uhd_source
from sdr.uhd_source import (
    LOCK_POLL_S,
    UHDSetupError,
    UHDSource,
    UHDStreamError,
    UHDUnavailableError,
    import_uhd,
)
from tests.uhd_double import (
    Event,
    Packet,
    StreamArgs,
    StreamCMD,
    StreamMode,
    SubdevSpec,
    TimeSpec,
    TuneRequest,
    UHDDouble,
    fake_uhd,
    packets,
)

RATE = 30.72e6
START_S = 1.75  # time_now_s (1.25) + start_delay_s (0.5)
T0 = round(START_S * RATE)
SPC = 1000  # samples_per_chunk in these tests
FIRST_RECV_S = 0.5 + 0.2  # start_delay_s + recv_timeout_s: the first recv also waits out the start
REPO = Path(__file__).resolve().parents[1]


def radio(**kw) -> RadioConfig:
    base = radio_config_for(get_profile("default"), 915e6, 30.0, device_args="addr=192.168.10.2")
    return base.replace(samples_per_chunk=SPC, **kw)


def source(rc: RadioConfig, double: UHDDouble, sleeps: list[float] | None = None) -> UHDSource:
    """A source on the double; lock polls ``sleep`` on a fake clock (recorded in ``sleeps``)."""
    slept = sleeps if sleeps is not None else []

    def clock() -> float:
        return round(sum(slept), 9)

    return UHDSource(rc, usrp_factory=double.factory, uhd_module=fake_uhd, sleep=slept.append, clock=clock)


def sc16_iq(n: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """Integer-valued complex samples ``[channel, sample]`` that fit int16."""
    rng = np.random.default_rng(seed)
    re, im = rng.integers(-32768, 32768, size=(2, channels, n))
    return (re + 1j * im).astype(np.complex64)


def as_complex(chunk: Chunk) -> np.ndarray:
    if chunk.iq.dtype == np.complex64:
        return chunk.iq
    pairs = chunk.iq.astype(np.float32)
    return pairs[..., 0] + 1j * pairs[..., 1]


def take(src: UHDSource, n: int) -> list[Chunk]:
    """First ``n`` chunks, then ``stop()`` as a signal handler would, and run the loop to its end."""
    out = []
    for chunk in src:
        out.append(chunk)
        if len(out) == n:
            src.stop()
    return out


def stream_calls(d: UHDDouble) -> list:
    """Calls from the timed start on."""
    return d.calls[d.names().index("get_time_now") :]


# ----- set-up --------------------------------------------------------------------
def test_setup_call_sequence_internal_references() -> None:
    d = UHDDouble()
    src = source(radio(), d)
    src.open()
    per_channel = []
    for i, f in enumerate((915e6, 870e6, 960e6)):
        per_channel += [
            ("set_rx_freq", (TuneRequest(f), i)),
            ("set_rx_gain", (30.0, i)),
            ("set_rx_antenna", ("RX1", i)),
        ]
    locks = []
    for i in range(3):
        locks += [("get_rx_sensor_names", (i,)), ("get_rx_sensor", ("lo_locked", i))]
    assert d.calls == [
        ("MultiUSRP", ("addr=192.168.10.2,master_clock_rate=245760000",)),
        ("set_clock_source", ("internal",)),
        ("set_time_source", ("internal",)),
        ("set_rx_subdev_spec", (SubdevSpec("A:0 A:1 B:0"),)),
        ("set_rx_rate", (RATE,)),
        ("get_rx_rate", (0,)),
        ("get_rx_rate", (1,)),
        ("get_rx_rate", (2,)),
        *per_channel,
        *locks,
        ("set_time_now", (TimeSpec(0.0),)),
        ("get_rx_stream", (StreamArgs("sc16", "sc16", channels=[0, 1, 2]),)),
        ("get_usrp_rx_info", (0,)),
        ("get_max_num_samps", ()),
    ]
    assert src.device_info["mboard_serial"] == "3271A5E"
    assert src.device_info["max_num_samps"] == 2000
    src.open()  # idempotent
    assert d.names().count("MultiUSRP") == 1


def test_subdev_spec_precedes_every_channel_setting() -> None:
    d = UHDDouble()
    source(radio(), d).open()
    names = d.names()
    first_subdev = names.index("set_rx_subdev_spec")
    for name in ("set_rx_rate", "set_rx_freq", "set_rx_gain", "set_rx_antenna", "get_rx_stream"):
        assert names.index(name) > first_subdev, name
    assert names.index("set_clock_source") < first_subdev


def test_external_references_wait_for_ref_lock_and_align_on_pps() -> None:
    d = UHDDouble(ref_locked=(False, False, True))
    sleeps: list[float] = []
    source(radio(clock_source="external", time_source="external"), d, sleeps).open()
    assert d.calls[1:8] == [
        ("set_clock_source", ("external",)),
        ("set_time_source", ("external",)),
        ("get_mboard_sensor_names", (0,)),
        ("get_mboard_sensor", ("ref_locked", 0)),
        ("get_mboard_sensor", ("ref_locked", 0)),
        ("get_mboard_sensor", ("ref_locked", 0)),
        ("set_rx_subdev_spec", (SubdevSpec("A:0 A:1 B:0"),)),
    ]
    assert sleeps == [LOCK_POLL_S, LOCK_POLL_S]
    assert ("set_time_unknown_pps", (TimeSpec(0.0),)) in d.calls
    assert "set_time_now" not in d.names()


def test_gpsdo_time_source_aligns_on_pps() -> None:
    d = UHDDouble()
    source(radio(clock_source="gpsdo", time_source="gpsdo"), d).open()
    assert d.calls_named("set_time_unknown_pps") == [(TimeSpec(0.0),)]


def test_reference_lock_timeout_is_a_clear_error() -> None:
    d = UHDDouble(ref_locked=(False,))
    sleeps: list[float] = []
    with pytest.raises(UHDSetupError, match=r"ref_locked: not locked after 0.05 s \(lock_timeout_s\)"):
        source(radio(clock_source="external", lock_timeout_s=0.05), d, sleeps).open()
    assert len(sleeps) == 5
    assert "set_rx_subdev_spec" not in d.names()


def test_lo_lock_timeout_names_the_channel() -> None:
    d = UHDDouble(lo_locked={2: (False,)})
    with pytest.raises(UHDSetupError, match=r"channel 2 \(upper, 960000000 Hz\) lo_locked: not locked"):
        source(radio(lock_timeout_s=0.02), d).open()


def test_coerced_rate_is_refused() -> None:
    d = UHDDouble(rx_rate_actual_hz=30e6)
    with pytest.raises(UHDSetupError, match=r"channel 0 runs at 30000000.0 Hz instead of rate_hz 30720000.0"):
        source(radio(), d).open()


def test_fc32_cpu_format_keeps_sc16_over_the_wire() -> None:
    d = UHDDouble()
    source(radio(cpu_format="fc32"), d).open()
    assert d.calls_named("get_rx_stream") == [(StreamArgs("fc32", "sc16", channels=[0, 1, 2]),)]


# ----- streaming ---------------------------------------------------------------------
def test_timed_start_and_chunks_equal_the_script_sc16() -> None:
    iq = sc16_iq(3 * SPC)
    d = UHDDouble(packets(iq, SPC, T0))
    src = source(radio(), d)
    chunks = take(src, 3)
    assert stream_calls(d)[:4] == [
        ("get_time_now", ()),
        (
            "issue_stream_cmd",
            (StreamCMD(StreamMode.start_cont, time_spec=TimeSpec(START_S), stream_now=False),),
        ),
        ("recv", ((3, SPC), FIRST_RECV_S)),
        ("recv", ((3, SPC), 0.2)),
    ]
    assert [c.capture_index for c in chunks] == [0, SPC, 2 * SPC]
    assert [c.lost_before for c in chunks] == [0, 0, 0]
    assert [c.time_s for c in chunks] == pytest.approx(
        [START_S + k * SPC / RATE for k in range(3)], abs=1e-12
    )
    for k, c in enumerate(chunks):
        assert isinstance(c, Chunk)
        assert c.iq.dtype == np.int16 and c.iq.shape == (3, SPC, 2) and c.iq.flags.c_contiguous
        assert c.n_samples == SPC
        np.testing.assert_array_equal(as_complex(c), iq[:, k * SPC : (k + 1) * SPC])
    assert src.events == [] and src.samples_lost == 0


def test_chunks_equal_the_script_fc32_and_short_packets() -> None:
    rng = np.random.default_rng(1)
    iq = (rng.standard_normal((3, 1500)) + 1j * rng.standard_normal((3, 1500))).astype(np.complex64)
    d = UHDDouble(packets(iq, 600, T0))  # 600 + 600 + 300: short reads are contiguous chunks
    src = source(radio(cpu_format="fc32"), d)
    chunks = take(src, 3)
    assert [c.capture_index for c in chunks] == [0, 600, 1200]
    assert all(c.iq.dtype == np.complex64 and c.iq.flags.c_contiguous for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.iq for c in chunks], axis=1), iq)


def test_overflow_mid_stream_reports_lost_samples_from_the_time_spec() -> None:
    iq = sc16_iq(2 * SPC, seed=2)
    gap = 777
    d = UHDDouble(
        [Packet(iq[:, :SPC], T0), Event("overflow", tick=T0 + SPC), Packet(iq[:, SPC:], T0 + SPC + gap)]
    )
    src = source(radio(), d)
    chunks = take(src, 2)
    assert [c.capture_index for c in chunks] == [0, SPC + gap]
    assert [c.lost_before for c in chunks] == [0, gap]
    assert chunks[1].time_s == pytest.approx(START_S + (SPC + gap) / RATE, abs=1e-12)
    np.testing.assert_array_equal(as_complex(chunks[1]), iq[:, SPC:])
    assert [(e.kind, e.capture_index, e.samples_lost) for e in src.events] == [
        ("overflow", SPC, 0),
        ("lost", SPC + gap, gap),
    ]
    assert src.samples_lost == gap
    assert src.event_counts == {"overflow": 1, "lost": 1}


def test_out_of_sequence_is_a_sequence_error_not_an_overflow() -> None:
    iq = sc16_iq(2 * SPC, seed=3)
    d = UHDDouble(
        [Packet(iq[:, :SPC], T0), Event("overflow", out_of_sequence=True), Packet(iq[:, SPC:], T0 + 3 * SPC)]
    )
    src = source(radio(), d)
    chunks = take(src, 2)
    assert src.event_counts == {"sequence_error": 1, "lost": 1}
    assert chunks[1].lost_before == 2 * SPC
    assert chunks[1].capture_index == 3 * SPC


def test_late_command_restarts_the_timed_stream() -> None:
    iq = sc16_iq(SPC, seed=4)
    d = UHDDouble([Event("late"), Packet(iq, T0)])
    src = source(radio(), d)
    chunks = take(src, 1)
    assert src.event_counts == {"late_command": 1}
    timed = StreamCMD(StreamMode.start_cont, time_spec=TimeSpec(START_S), stream_now=False)
    assert stream_calls(d)[:6] == [
        ("get_time_now", ()),
        ("issue_stream_cmd", (timed,)),
        ("recv", ((3, SPC), FIRST_RECV_S)),
        ("get_time_now", ()),
        ("issue_stream_cmd", (timed,)),
        ("recv", ((3, SPC), FIRST_RECV_S)),
    ]
    assert chunks[0].capture_index == 0 and chunks[0].lost_before == 0


def test_too_many_late_commands_raise_and_stop() -> None:
    d = UHDDouble([Event("late")] * 3)
    src = source(radio(max_late_restarts=2), d)
    with pytest.raises(UHDStreamError, match="late 3 times"):
        list(src)
    assert d.calls_named("issue_stream_cmd")[-1] == (StreamCMD(StreamMode.stop_cont),)


def test_timeouts_are_retried_then_raise_a_clear_error() -> None:
    iq = sc16_iq(2 * SPC, seed=5)
    d = UHDDouble([Packet(iq[:, :SPC], T0), Event("timeout"), Packet(iq[:, SPC:], T0 + SPC)])
    src = source(radio(max_timeouts=3), d)
    chunks = []
    with pytest.raises(UHDStreamError, match=r"no samples for 3 consecutive recv timeouts of 0.2 s"):
        for c in src:
            chunks.append(c)
    assert [c.capture_index for c in chunks] == [0, SPC]
    assert [c.lost_before for c in chunks] == [0, 0]
    assert src.event_counts == {"timeout": 4}  # one mid-stream, then three in a row
    assert [e.detail for e in src.events] == ["1/3", "1/3", "2/3", "3/3"]
    assert d.calls_named("issue_stream_cmd")[-1] == (StreamCMD(StreamMode.stop_cont),)


@pytest.mark.parametrize(
    "code,detail",
    [  # what UHD's rx_metadata_t::strerror() returns for each (host/lib/types/metadata.cpp)
        ("broken_chain", "ERROR_CODE_BROKEN_CHAIN (Expected another stream command)"),
        ("alignment", "ERROR_CODE_ALIGNMENT (Multi-channel alignment failed)"),
        ("bad_packet", "ERROR_CODE_BAD_PACKET"),
    ],
)
def test_other_error_codes_are_events(code: str, detail: str) -> None:
    iq = sc16_iq(2 * SPC, seed=6)
    d = UHDDouble([Packet(iq[:, :SPC], T0), Event(code), Packet(iq[:, SPC:], T0 + SPC)])
    src = source(radio(), d)
    chunks = take(src, 2)
    assert src.event_counts == {code: 1}
    assert src.events[0].detail == detail
    assert chunks[1].lost_before == 0


def test_stop_issues_stop_cont_drains_and_ends_the_loop() -> None:
    iq = sc16_iq(4 * SPC, seed=7)
    d = UHDDouble(packets(iq, SPC, T0), inflight_after_stop=1)
    src = source(radio(), d)
    chunks = take(src, 2)
    assert len(chunks) == 2
    assert d.calls[-4:] == [
        ("recv", ((3, SPC), 0.2)),
        ("issue_stream_cmd", (StreamCMD(StreamMode.stop_cont),)),
        ("recv", ((3, SPC), 0.1)),  # one packet still in flight
        ("recv", ((3, SPC), 0.1)),  # then the streamer is empty
    ]
    assert src.stop_requested
    assert list(src) == []  # a stopped source stays stopped
    assert d.names().count("issue_stream_cmd") == 2


def test_stop_from_a_signal_handler() -> None:
    d = UHDDouble(packets(sc16_iq(5 * SPC, seed=8), SPC, T0))
    src = source(radio(), d)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: src.stop())
    try:
        got = 0
        for _ in src:
            got += 1
            if got == 2:
                signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert got == 2
    assert (StreamCMD(StreamMode.stop_cont),) in d.calls_named("issue_stream_cmd")


def test_context_manager_stops_once_when_the_consumer_breaks() -> None:
    d = UHDDouble(packets(sc16_iq(3 * SPC, seed=9), SPC, T0))
    with source(radio(), d) as src:
        assert "get_rx_stream" in d.names()  # opened on entry
        for _chunk in src:
            break
    stops = [a for a in d.calls_named("issue_stream_cmd") if a[0].stream_mode is StreamMode.stop_cont]
    assert len(stops) == 1


# ----- construction, factories, lazy import -------------------------------------------
def test_missing_uhd_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uhd", None)  # makes `import uhd` fail
    src = UHDSource(radio())
    with pytest.raises(UHDUnavailableError, match=r"apt-get install python3-uhd.*numpy<2"):
        src.open()


def test_waveform_must_match_the_radio() -> None:
    wf = get_profile("default").replace(carrier_freq_hz=916e6)
    with pytest.raises(ConfigError, match=r"channels\[0\].rf_center_hz = 915000000.0: the waveform puts"):
        UHDSource(radio(), wf)
    with pytest.raises(ConfigError, match="capture_rate_hz"):
        UHDSource(radio(), get_profile("x410-62m5"))


def test_source_attributes() -> None:
    src = UHDSource(radio())
    assert isinstance(src, IQSource)
    assert src.name == "uhd" and src.is_live
    assert src.capture_rate_hz == RATE
    assert src.channels == [("central", 915e6), ("lower", 870e6), ("upper", 960e6)]
    assert src.waveform == get_profile("default")
    assert src.format == "sc16"
    assert src.events == []


def test_make_uhd_source_from_flags() -> None:
    args = argparse.Namespace(
        profile="x410-62m5", center_freq_hz=2.4e9, gain_db=40.0, device_args="addr=10.0.0.2"
    )
    src = make_uhd_source(args)
    assert src.capture_rate_hz == 62.5e6
    assert src.radio.master_clock_rate_hz == 250e6 and src.radio.decimation == 4
    assert src.channels == [("central", 2.4e9), ("lower", 2.355e9), ("upper", 2.445e9)]
    assert src.waveform.carrier_freq_hz == 2.4e9 and src.waveform.profile == "x410-62m5"
    assert {ch.gain_db for ch in src.radio.channels} == {40.0}
    assert src.radio.device_args_full == "addr=10.0.0.2,master_clock_rate=250000000"


def test_add_uhd_args_feeds_make_uhd_source() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--profile", default="default")
    p.add_argument("--chunk-samples", type=int, default=1 << 18)
    add_uhd_args(p)
    args = p.parse_args(
        "--center-freq-hz 2.4e9 --gain-db 45 --device-args addr=10.0.0.2 --clock-source external "
        "--time-source gpsdo --antenna TX/RX0 --rx-bands central upper".split()
    )
    src = make_uhd_source(args)
    rc = src.radio
    assert src.channels == [("central", 2.4e9), ("upper", 2.445e9)]
    assert rc.subdev_spec == "A:0 A:1" and rc.samples_per_chunk == 1 << 18
    assert (rc.clock_source, rc.time_source) == ("external", "gpsdo")
    assert {(c.gain_db, c.antenna) for c in rc.channels} == {(45.0, "TX/RX0")}
    assert src.waveform.carrier_freq_hz == 2.4e9


def test_make_uhd_source_from_a_radio_config_file(tmp_path: Path) -> None:
    rc = radio_config_for(
        get_profile("default"), 2.45e9, 20.0, bands=("central", "upper"), device_args="addr=x"
    )
    path = tmp_path / "radio.json"
    rc.save_json(path)
    src = make_uhd_source(argparse.Namespace(radio_config=str(path), profile="default"))
    assert src.radio == rc
    assert src.channels == [("central", 2.45e9), ("upper", 2.495e9)]
    assert src.waveform.carrier_freq_hz == 2.45e9 and src.waveform.tag_shift_hz == 45e6


def test_importing_and_building_the_source_does_not_import_uhd() -> None:
    code = textwrap.dedent(
        """
        import argparse, importlib.abc, sys
        attempts = []
        class Spy(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "uhd":
                    attempts.append(name)
                return None
        sys.meta_path.insert(0, Spy())
        import sdr.uhd_cli
        src = sdr.uhd_cli.make_uhd_source(argparse.Namespace(profile="default", gain_db=10.0))
        assert "uhd" not in sys.modules, sorted(sys.modules)
        assert attempts == [], attempts
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ----- RadioConfig -----------------------------------------------------------------------
def test_radio_config_for_profiles() -> None:
    rc = radio_config_for(get_profile("default"), 915e6, 30.0)
    assert rc.master_clock_rate_hz == 245.76e6 and rc.decimation == 8 and rc.rate_hz == 30.72e6
    assert [(c.band, c.rf_center_hz) for c in rc.channels] == [
        ("central", 915e6),
        ("lower", 870e6),
        ("upper", 960e6),
    ]
    assert rc.subdev_spec == "A:0 A:1 B:0"
    fast = radio_config_for(get_profile("x410-62m5"), 915e6, {"central": 10.0, "lower": 30.0, "upper": 31.0})
    assert fast.master_clock_rate_hz == 250e6 and fast.rate_hz == 62.5e6
    assert [c.gain_db for c in fast.channels] == [10.0, 30.0, 31.0]
    with pytest.raises(ConfigError, match="no X410 master clock rate"):
        radio_config_for(get_profile("default").replace(capture_rate_hz=40e6), 915e6, 30.0)


def test_radio_config_json_round_trip() -> None:
    rc = radio(clock_source="gpsdo", time_source="external")
    assert RadioConfig.from_json(rc.to_json()) == rc
    assert isinstance(json.loads(rc.to_json())["channels"][0], dict)
    attrs: dict = {}
    rc.to_h5_attrs(attrs)
    assert RadioConfig.from_h5_attrs(attrs) == rc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"master_clock_rate_hz": 200e6},
            r"RadioConfig.master_clock_rate_hz = 200000000.0: must be 245.76e6 or 250e6",
        ),
        (
            {"subdev_spec": "A:0 A:1"},
            r"RadioConfig.subdev_spec = 'A:0 A:1': has 2 entries but there are 3 channels",
        ),
        ({"clock_source": "mimo"}, r"RadioConfig.clock_source = 'mimo': must be one of"),
        ({"cpu_format": "sc8"}, r"RadioConfig.cpu_format"),
        (
            {"device_args": "addr=x,master_clock_rate=250e6"},
            r"RadioConfig.device_args = .*master_clock_rate_hz",
        ),
        ({"start_delay_s": 0.0}, r"RadioConfig.start_delay_s"),
    ],
)
def test_radio_config_rejects_bad_values(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        radio(**change)


def test_rate_must_be_an_integer_decimation_of_the_master_clock() -> None:
    chans = [dict(ch.to_dict(), rate_hz=30e6) for ch in radio().channels]
    with pytest.raises(ConfigError) as err:
        RadioConfig(channels=chans)
    msg = str(err.value)
    assert msg.startswith("RadioConfig.channels[0].rate_hz = 30000000.0: master_clock_rate_hz 2.4576e+08 Hz")
    assert "8.192 is not an integer decimation" in msg and "3.072e+07 Hz (/8)" in msg


def test_channel_rates_must_be_equal() -> None:
    chans = list(radio().channels)
    chans[2] = chans[2].replace(rate_hz=61.44e6)
    with pytest.raises(
        ConfigError, match=r"channels\[2\].rate_hz = 61440000.0: all channels must share one rate"
    ):
        RadioConfig(channels=chans)


def test_unknown_key_duplicate_band_missing_central() -> None:
    with pytest.raises(ConfigError, match=r"RadioConfig: unknown key\(s\) \['gain'\]"):
        RadioConfig.from_dict({"gain": 3})
    with pytest.raises(ConfigError, match=r"channels\[0\]: ChannelConfig: unknown key\(s\) \['freq'\]"):
        RadioConfig.from_dict({"channels": [{"freq": 1e9}], "subdev_spec": "A:0"})
    dup = [ChannelConfig(band="central"), ChannelConfig(band="central", rf_center_hz=1e9)]
    with pytest.raises(ConfigError, match=r"channels\[1\].band = 'central': duplicate band"):
        RadioConfig(channels=dup, subdev_spec="A:0 A:1")
    with pytest.raises(ConfigError, match=r"bands \['lower', 'upper'\] lack 'central'"):
        RadioConfig(
            channels=[ChannelConfig(band="lower"), ChannelConfig(band="upper")], subdev_spec="A:0 A:1"
        )
    with pytest.raises(ConfigError, match=r"channels\[0\]: ChannelConfig.band = 'side'"):
        RadioConfig(channels=[{"band": "side"}], subdev_spec="A:0")


def test_json_file_errors_name_the_file_and_field(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    radio().save_json(good)
    assert load_radio_config(good) == radio()
    bad = tmp_path / "bad.json"
    data = json.loads(good.read_text())
    data["channels"][1]["gain_db"] = "loud"
    bad.write_text(json.dumps(data))
    with pytest.raises(
        ConfigError, match=r"bad.json: RadioConfig.channels\[1\]: ChannelConfig.gain_db: cannot use"
    ):
        load_radio_config(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{\n  'device_args': 1\n}")
    with pytest.raises(ConfigError, match=r"broken.json: invalid JSON at line 2 column 3"):
        load_radio_config(broken)
    with pytest.raises(ConfigError, match=r"missing.json: cannot read"):
        load_radio_config(tmp_path / "missing.json")


def _fake_uhd_package(root: Path, body: str) -> None:
    pkg = root / "uhd"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(body))


def test_uhd_built_for_numpy_1_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_uhd_package(
        tmp_path,
        """
        import sys
        print("AttributeError: _ARRAY_API not found", file=sys.stderr)
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "uhd", raising=False)
    try:
        with pytest.raises(UHDUnavailableError, match=r"compiled against numpy 1.x .*numpy<2"):
            import_uhd()
    finally:
        sys.modules.pop("uhd", None)


def test_import_uhd_returns_a_working_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_uhd_package(tmp_path, "MARK = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "uhd", raising=False)
    try:
        assert import_uhd().MARK == 1
    finally:
        sys.modules.pop("uhd", None)


def test_chunks_are_accepted_by_the_wire_conversion() -> None:
    iq = sc16_iq(SPC, seed=10)
    (native,) = take(source(radio(), UHDDouble(packets(iq, SPC, T0))), 1)
    sc16 = as_wire_array(native.iq, "sc16")
    assert sc16.shape == (3, SPC, 2)
    np.testing.assert_array_equal(sc16[..., 0] + 1j * sc16[..., 1], iq)
    scaled = (iq / 32767).astype(np.complex64)
    (fc32,) = take(source(radio(cpu_format="fc32"), UHDDouble(packets(scaled, SPC, T0))), 1)
    np.testing.assert_array_equal(as_wire_array(fc32.iq, "fc32"), scaled)
    np.testing.assert_allclose(sc16_to_complex(as_wire_array(native.iq, "sc16")), scaled, atol=1e-7)
