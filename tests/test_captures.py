"""Capture format: round trip, validation errors that name file and path, SigMF export."""

import json
import os
import shutil

import h5py
import numpy as np
import pytest
from sigmf import sigmffile

from backscatter.cli import main
from captures.format import CaptureError
from captures.reader import open_capture
from captures.sigmf_export import export_sigmf
from sdr.emulator.capture import write_emulated_capture
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig

SC = ScenarioConfig(duration_s=0.02, seed=21, n_nlos=2, drops=((0.01, 300),))


@pytest.fixture(scope="module")
def capture(tmp_path_factory, wf):
    path = tmp_path_factory.mktemp("cap") / "c.h5"
    write_emulated_capture(path, wf, SC)
    return path


@pytest.mark.parametrize("datatype", ["ci16_le", "cf32_le"])
def test_round_trip_samples_metadata_truth_and_gaps(tmp_path, wf, datatype):
    path = tmp_path / "r.h5"
    emu = write_emulated_capture(path, wf, SC, datatype=datatype)
    ref = Emulator(wf, SC).generate()
    with open_capture(path) as cap:
        assert cap.waveform == wf
        assert cap.bands == ["central", "lower", "upper"]
        assert [c.center_freq_hz for c in cap.channels] == [915e6, 870e6, 960e6]
        assert cap.capture_rate_hz == wf.working_rate_hz
        assert cap.n_samples == ref.shape[1]
        got = cap.read()
        # ci16 quantises exactly the emulator's 16-bit levels; cf32 stores them as they are
        np.testing.assert_allclose(got, ref, atol=1e-6)
        np.testing.assert_array_equal(cap.gaps, [[307200, 300]])
        truth = cap.truth()
        assert truth.range_true_m == emu.truth.range_true_m
        np.testing.assert_array_equal(truth.packet_bits, emu.truth.packet_bits)
        np.testing.assert_allclose(truth.cfr_propagation["upper"], emu.truth.cfr_propagation["upper"])
        assert ScenarioConfig.from_json(cap.scenario_json) == SC
        chunks = list(cap.iter_chunks(100_000))
        assert sum(c[1].shape[1] for c in chunks) == cap.n_samples
        assert [c[2] for c in chunks if c[2]] == [300]
        assert [c[0] for c in chunks if c[2]] == [307200]


def test_refuses_to_overwrite(capture, wf):
    with pytest.raises(FileExistsError):
        write_emulated_capture(capture, wf, SC)


def _expect(path, where, words):
    with pytest.raises(CaptureError) as ei:
        open_capture(path).read()
    msg = str(ei.value)
    assert str(path) in msg and ei.value.where == where, msg
    assert words in msg, msg


def _mutated(capture, tmp_path, fn):
    p = tmp_path / "m.h5"
    shutil.copy(capture, p)
    with h5py.File(p, "r+") as f:
        fn(f)
    return p


def test_capture_written_before_the_rate_rename_still_reads(capture, tmp_path):
    """Its ``/config/waveform`` names the working rate ``sample_rate_hz``."""

    def old_names(f):
        w = f["config/waveform"].attrs
        w["sample_rate_hz"] = w["working_rate_hz"]
        del w["working_rate_hz"]

    with open_capture(capture) as new, open_capture(_mutated(capture, tmp_path, old_names)) as old:
        assert old.waveform == new.waveform and old.capture_rate_hz == new.capture_rate_hz
        np.testing.assert_array_equal(old.read(), new.read())


def test_truncated_file_names_the_file(capture, tmp_path):
    p = tmp_path / "t.h5"
    data = capture.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _expect(p, "/", "truncated or corrupt")


def test_corrupt_sample_chunk_is_caught_by_the_checksum(capture, tmp_path):
    p = tmp_path / "x.h5"
    shutil.copy(capture, p)
    with h5py.File(p, "r") as f:
        offset = f["iq"].id.get_chunk_info(3).byte_offset
    raw = bytearray(p.read_bytes())
    raw[offset + 100 : offset + 108] = b"\xff" * 8
    p.write_bytes(bytes(raw))
    _expect(p, "/iq", "checksum")


def test_not_a_capture(tmp_path):
    p = tmp_path / "plain.txt"
    p.write_text("hello")
    _expect(p, "/", "not a readable HDF5 file")
    _expect(tmp_path / "missing.h5", "/", "no such file")


@pytest.mark.parametrize(
    "mutate,where,words",
    [
        (lambda f: f.attrs.__setitem__("format_version", 99), "/", "unknown format_version 99"),
        (lambda f: f.attrs.__setitem__("format", "other"), "/", "'format'"),
        (lambda f: f.attrs.__delitem__("core:sample_rate"), "/", "core:sample_rate"),
        (lambda f: f.attrs.__setitem__("core:datatype", "ci8"), "/", "core:datatype"),
        (lambda f: f.__delitem__("iq"), "/iq", "missing dataset"),
        (lambda f: f.__delitem__("config"), "/config/waveform", "missing group"),
        (lambda f: f["config/waveform"].attrs.__setitem__("version", 7), "/config/waveform", "version"),
        (lambda f: f["config/waveform"].attrs.__setitem__("extra", 1), "/config/waveform", "unknown key"),
        (lambda f: f["iq"].attrs.__setitem__("band", ["central", "lower"]), "/iq", "2 bands for 3 channels"),
        (lambda f: f["iq"].attrs.__setitem__("band", ["central", "lower", "side"]), "/iq", "band"),
        (lambda f: f["iq"].attrs.__setitem__("core:frequency", [1.0, 2.0]), "/iq", "core:frequency"),
        (
            lambda f: f["gaps"].resize((1, 2)) or f["gaps"].__setitem__(0, (10, -5)),
            "/gaps",
            "losses positive",
        ),
    ],
)
def test_defects_raise_one_error_naming_file_path_and_problem(capture, tmp_path, mutate, where, words):
    _expect(_mutated(capture, tmp_path, mutate), where, words)


def test_wrong_iq_dtype(capture, tmp_path):
    def swap(f):
        del f["iq"]
        d = f.create_dataset("iq", data=np.zeros((3, 10, 2), np.float32))
        d.attrs["band"] = ["central", "lower", "upper"]
        d.attrs["core:frequency"] = [1.0, 2.0, 3.0]

    _expect(_mutated(capture, tmp_path, swap), "/iq", "int16")


def test_sigmf_export_validates(capture, tmp_path):
    path = export_sigmf(capture, tmp_path / "sigmf")
    coll = sigmffile.fromfile(str(path))
    assert coll.get_stream_names() == ["c_central", "c_lower", "c_upper"]
    assert coll.verify_stream_hashes() is None
    with open_capture(capture) as cap:
        ref = cap.read()
        for i, band in enumerate(cap.bands):
            rec = coll.get_SigMFFile(stream_index=i)
            rec.validate()
            assert rec.get_global_field("core:datatype") == "ci16_le"
            assert rec.get_captures()[0]["core:frequency"] == cap.channels[i].center_freq_hz
            assert rec.get_captures()[1]["core:global_index"] == 307200 + 300  # the gap
            np.testing.assert_allclose(rec.read_samples(0, 1000), ref[i, :1000], atol=1e-4), band


def test_cli_emulate_then_info_json(tmp_path, capsys):
    out = tmp_path / "cli.h5"
    args = [
        "emulate",
        "--seed",
        "8",
        "--duration-s",
        "0.05",
        "--paths",
        "3",
        "--snr-db",
        "12",
        "--out",
        str(out),
    ]
    assert main([*args, "--json"]) == 0
    emulated = json.loads(capsys.readouterr().out)
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["samples"] == round(0.05 * 30.72e6)
    assert info["truth"]["range_true_m"] == emulated["range_true_m"]
    assert info["truth"]["snr_db"] == {"central": 30.0, "lower": 12.0, "upper": 12.0}
    assert main(args) == 2  # refuses to overwrite
    assert "refusing to overwrite" in capsys.readouterr().err


def test_cli_bad_scenario_key_is_named(tmp_path, capsys):
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"n_nlos": 2, "bogus": 1}))
    assert main(["emulate", "--scenario", str(bad), "--out", str(tmp_path / "o.h5")]) == 2
    err = capsys.readouterr().err
    assert "bogus" in err and str(bad) in err


def test_capture_written_from_format_md_alone_is_accepted(tmp_path, wf):
    """The FORMAT.md example, with bare h5py and the emulator's samples."""
    sc = ScenarioConfig(duration_s=0.01, seed=3, bands=("central", "upper"))
    iq = Emulator(wf, sc).generate()
    p = tmp_path / "mine.h5"
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "backscatter-capture"
        f.attrs["format_version"] = 1
        f.attrs["core:datatype"] = "ci16_le"
        f.attrs["core:sample_rate"] = 30.72e6
        pairs = np.stack([iq.real, iq.imag], -1) * 32767
        d = f.create_dataset("iq", data=np.rint(pairs).astype(np.int16))  # contiguous, no checksum
        d.attrs["band"] = ["central", "upper"]
        d.attrs["core:frequency"] = [915e6, 960e6]
        f.create_group("config/waveform").attrs["profile"] = "default"
    with open_capture(p) as cap:
        assert cap.bands == ["central", "upper"] and cap.waveform == wf and cap.truth() is None
        np.testing.assert_allclose(cap.read(), iq, atol=1e-6)


def test_writeback_syncs_and_drops_every_n_bytes_and_keeps_every_sample(tmp_path, wf, monkeypatch):
    """``writeback_bytes``: the live recorder's steady write-back (fdatasync + drop from cache)."""
    from captures.format import ChannelInfo
    from captures.writer import CaptureWriter

    synced: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(fd), real(fd)))
    chans = [ChannelInfo("central", 915e6), ChannelInfo("upper", 960e6)]
    rng = np.random.default_rng(5)
    chunks = [rng.integers(-3000, 3000, (2, 10_000, 2)).astype(np.int16) for _ in range(7)]  # 80 kB each
    path = tmp_path / "wb.h5"
    with CaptureWriter(path, wf, chans, wf.working_rate_hz, swmr=True, writeback_bytes=200_000) as w:
        for c in chunks:
            w.append(c)
    assert len(synced) == 2  # after 240 kB and 480 kB; the rest is left to close
    with open_capture(path) as cap:
        got = np.stack([cap.read_raw(ch, 0, cap.n_samples) for ch in range(2)])
    np.testing.assert_array_equal(got, np.concatenate(chunks, axis=1))
