"""CW calibration: circuitry responses and d_cal measured at a known range, stored, applied, refused."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest

from backscatter.cli import main
from calibration.estimate import group_delay_s, propagation
from calibration.store import BandSetting, CalibrationError, RadioSettings, load_calibration, save_calibration
from calibration.workflow import calibrate
from dsp.receiver import Receiver
from dsp.receiver_config import ReceiverConfig
from dsp.results import RangingEpoch
from dsp.waveform import get_profile
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig

D0_M, KNOWN_M, HW_SEED = 20.0, 31.0, 4


def settings_for(wf, bands=("central", "lower", "upper")) -> RadioSettings:
    channels = tuple(BandSetting(b, wf.band_centers_hz[b], 30.0) for b in bands)
    return RadioSettings(wf, wf.working_rate_hz, channels)


@pytest.fixture(scope="module")
def cal(wf):
    """A calibration of the emulated radio ``HW_SEED`` from 0.3 s of CW at a known geometry."""
    half = math.sqrt((KNOWN_M / 2) ** 2 - (D0_M / 2) ** 2)
    sc = ScenarioConfig(
        seed=11, duration_s=0.3, mode="cw", tag_pos_m=(D0_M / 2, half), circuitry_seed=HW_SEED
    )
    emu = Emulator(wf, sc)
    assert emu.truth.range_true_m == pytest.approx(KNOWN_M)
    return calibrate(((b.iq, b.lost_before) for b in emu.blocks()), settings_for(emu.wf), KNOWN_M, D0_M, 0.3)


def test_group_delay_of_a_pure_delay_across_the_dc_hole(wf):
    for tau in (3e-9, 47.5e-9, -12e-9):
        resp = propagation(wf, tau * 299_792_458.0) * np.exp(0.7j)
        assert group_delay_s(resp, wf.active_freqs_hz) == pytest.approx(tau, abs=1e-13)


def test_d_cal_equals_the_emulated_differential_circuitry_delay(wf, cal):
    emu = Emulator(wf, ScenarioConfig(seed=99, circuitry_seed=HW_SEED))
    c = 299_792_458.0
    for band in ("lower", "upper"):
        truth = (emu.truth.circuitry_delay_s[band] - emu.truth.circuitry_delay_s["central"]) * c
        # the ripple moves the least-squares group delay by a few cm at most
        assert cal.d_cal_m[band] == pytest.approx(truth, abs=0.1)
    q = cal.quality
    assert q["epochs"] >= 5 and all(abs(q["snr_db"][b] - 30) < 1 for b in q["snr_db"])
    assert all(v < 0.01 for v in q["d_cal_std_m"].values())  # stable over the run (30 dB)
    assert all(1 < q["ripple_deg"][b] < 6 for b in q["ripple_deg"])  # the emulator's +-3 deg ripple


@pytest.mark.parametrize("seed", [21, 22])
def test_calibration_brings_los_ranging_from_metres_to_below_half_a_metre(wf, cal, seed):
    sc = ScenarioConfig(seed=seed, duration_s=0.12, mode="cw", circuitry_seed=HW_SEED)
    emu = Emulator(wf, sc)
    iq = emu.generate()
    errors = {}
    for name, kw in (("none", {}), ("calibrated", cal.receiver_kwargs())):
        cfg = ReceiverConfig(tag_mode="cw", tx_rx_distance_m=D0_M)  # typed: the RX stands at (20, 0)
        rx = Receiver(emu.wf, list(sc.bands), None, cfg, **kw)
        eps = [r for r in rx.push(iq) + rx.flush() if isinstance(r, RangingEpoch)]
        assert eps
        errors[name] = max(abs(e.range_m["ir_first_interp"] - emu.truth.range_true_m) for e in eps)
    assert errors["none"] > 2.0  # circuitry delays of 5-60 ns per element: metres
    assert errors["calibrated"] < 0.5


def test_save_load_round_trip_and_refusal_of_other_settings(tmp_path, wf, cal):
    path = tmp_path / "cal.h5"
    save_calibration(path, cal)
    with pytest.raises(FileExistsError):
        save_calibration(path, cal)
    back = load_calibration(path)
    assert back.d_cal_m == cal.d_cal_m
    np.testing.assert_array_equal(back.response["upper"], cal.response["upper"])
    back.check(settings_for(wf))  # same settings: accepted
    shift = {"upper": 1e6}
    moved = RadioSettings(
        wf,
        wf.working_rate_hz,
        tuple(BandSetting(b, wf.band_centers_hz[b] + shift.get(b, 0.0), 30.0) for b in cal.response),
    )
    with pytest.raises(CalibrationError, match="upper band: calibration made at RF centre"):
        back.check(moved)
    louder = RadioSettings(
        wf, wf.working_rate_hz, tuple(BandSetting(b, wf.band_centers_hz[b], 40.0) for b in cal.response)
    )
    with pytest.raises(CalibrationError, match="gain 30 dB, this stream has 40 dB"):
        back.check(louder)
    x410 = get_profile("x410-62m5")
    with pytest.raises(CalibrationError, match="another waveform"):
        back.check(RadioSettings(x410, x410.capture_rate_hz, settings_for(wf).bands))


def test_calibration_saved_before_the_rate_rename_still_loads(tmp_path, wf, cal):
    """Its settings name the capture rate, and its waveform the working rate, ``sample_rate_hz``."""
    path = tmp_path / "old.h5"
    save_calibration(path, cal)
    with h5py.File(path, "a") as f:
        settings, waveform = json.loads(f.attrs["settings"]), json.loads(f.attrs["waveform"])
        settings["sample_rate_hz"] = settings.pop("capture_rate_hz")
        waveform["sample_rate_hz"] = waveform.pop("working_rate_hz")
        f.attrs["settings"], f.attrs["waveform"] = json.dumps(settings), json.dumps(waveform)
    back = load_calibration(path)
    assert back.settings == cal.settings
    back.check(settings_for(wf))


def test_loader_names_the_file_and_the_problem(tmp_path, cal):
    bad = tmp_path / "not.h5"
    bad.write_bytes(b"nonsense")
    with pytest.raises(CalibrationError, match=r"not\.h5: cannot open"):
        load_calibration(bad)
    path = tmp_path / "cal.h5"
    save_calibration(path, cal)
    with h5py.File(path, "a") as f:
        del f["bands/lower/response"]
        f["bands/lower/response"] = np.ones(3, complex)
    with pytest.raises(CalibrationError, match=r"/bands/lower/response: must be complex \[800\]"):
        load_calibration(path)


def test_calibrate_then_replay_with_the_calibration(tmp_path, capsys):
    cal_path, cap = tmp_path / "cal.h5", tmp_path / "run.h5"
    hw = ["--circuitry-seed", "7"]
    args = ["calibrate", "--known-range-m", "33", "--duration-s", "0.25", "--out", str(cal_path), "--json"]
    assert main([*args, *hw]) == 0
    capsys.readouterr()
    emu_args = ["emulate", "--out", str(cap), "--seed", "5", "--mode", "cw", "--duration-s", "0.12"]
    assert main([*emu_args, *hw]) == 0
    capsys.readouterr()
    assert main(["replay", str(cap), "--calibration", str(cal_path), "--json"]) == 0
    import json

    s = json.loads(capsys.readouterr().out)
    assert abs(s["range_error_m"]["ir_first_interp"]) < 0.5
    assert s["calibration"] == str(cal_path)
    assert main(["replay", str(cap), "--calibration", str(tmp_path / "missing.h5")]) == 2
    assert "missing.h5: cannot open" in capsys.readouterr().err
