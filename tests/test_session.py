"""The receiver session (app/session.py): settings validated on construction, one builder."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from app.session import ReceiverSettings, SessionError, emulated_radio, open_receiver
from dsp.config_base import ConfigError
from dsp.errors import BackscatterError
from dsp.waveform import get_profile
from sdr.stream_truth import StreamTruth


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"methods": ("no_such_method",)}, "methods"),
        ({"methods": ()}, "methods"),
        ({"methods": "ir_first"}, "methods"),
        ({"tx_rx_distance_m": -1.0}, "tx_rx_distance_m"),
        ({"tx_rx_distance_m": float("nan")}, "tx_rx_distance_m"),
        ({"tx_rx_distance_m": True}, "tx_rx_distance_m"),
        ({"tag_mode": "pulsed"}, "tag_mode"),
        ({"receiver_config": 3}, "receiver_config"),
        ({"truth_packets": "yes"}, "truth_packets"),
        ({"calibration": Path("cal.h5"), "truth_calibration": True}, "calibration"),
    ],
)
def test_settings_refuse_bad_values_naming_the_field(fields, name):
    with pytest.raises(SessionError, match=rf"^ReceiverSettings\.{name}: "):
        ReceiverSettings(**fields)


def test_a_session_error_is_a_config_error_and_a_backscatter_error():
    assert issubclass(SessionError, ConfigError) and issubclass(SessionError, BackscatterError)


def test_from_args_reads_a_command_line_and_coerces():
    args = argparse.Namespace(method=["music"], tx_rx_distance_m=12, tag_mode=None, receiver_config="rc.json")
    s = ReceiverSettings.from_args(args)
    assert s.methods == ("music",) and s.tx_rx_distance_m == 12.0 and s.receiver_config == Path("rc.json")
    assert s.calibration is None and s.truth_calibration is False  # absent options: None / False
    note = ReceiverSettings.from_args(args, truth_calibration=True).calibration_note
    assert note.startswith("emulator truth")


def test_config_layers_file_then_settings_then_stream(tmp_path):
    rc = tmp_path / "rc.json"
    rc.write_text(json.dumps({"methods": ["music"], "tag_mode": "cw", "epoch_symbols": 700}))
    truth = StreamTruth(range_true_m=25.0, tx_rx_distance_m=20.0)
    cfg = ReceiverSettings(receiver_config=rc).config(truth, mode="burst")
    assert cfg.methods == ("music",) and cfg.epoch_symbols == 700
    assert cfg.tag_mode == "burst" and cfg.tx_rx_distance_m == 20.0  # the stream's, over the file's
    cfg = ReceiverSettings(receiver_config=rc, tag_mode="cw", tx_rx_distance_m=5.0).config(truth, "burst")
    assert cfg.tag_mode == "cw" and cfg.tx_rx_distance_m == 5.0  # the user's, over the stream's
    assert ReceiverSettings().config().tx_rx_distance_m is None


def test_unreadable_receiver_json_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SessionError, match=r"bad\.json: cannot read receiver JSON"):
        ReceiverSettings(receiver_config=bad).config()


def test_open_receiver_builds_from_the_radio_and_the_truth():
    wf = get_profile("default")
    radio = emulated_radio(wf, ("central", "upper"), wf.capture_rate_hz)
    truth = StreamTruth(
        range_true_m=25.0,
        tx_rx_distance_m=20.0,
        packet_start_sample=(1000.0,),
        packet_bits_hex=("0f",),
        bits_per_packet=8,
    )
    rx = open_receiver(ReceiverSettings(methods=("ir_first",)), radio, truth=truth)
    assert rx.bands == ["central", "upper"] and rx.cfg.methods == ("ir_first",)
    assert rx.cfg.tx_rx_distance_m == 20.0
    starts, bits = rx.truth_packets
    assert np.allclose(starts, [1000.0]) and bits.shape == (1, 8)
    rx = open_receiver(ReceiverSettings(truth_packets=False), radio, truth=truth)
    assert rx.truth_packets is None
    with pytest.raises(SessionError, match="truth calibration needs"):
        open_receiver(ReceiverSettings(truth_calibration=True), radio, truth=truth, where="stream x")
