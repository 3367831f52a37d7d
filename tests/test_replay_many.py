"""``replay DIR_OR_GLOB``: one task per capture on the sweep engine, summaries merged."""

from __future__ import annotations

import json

from backscatter.cli import main


def test_replay_of_a_directory_merges_every_file(tmp_path, capsys):
    for seed in (1, 2):
        args = ["emulate", "--seed", str(seed), "--duration-s", "0.25", "--snr-db", "-20"]
        assert main([*args, "--out", str(tmp_path / f"c{seed}.h5")]) == 0
    (tmp_path / "notes.txt").write_text("not a capture")
    capsys.readouterr()
    assert main(["replay", str(tmp_path), "--truth-calibration", "--json"]) == 0
    merged = json.loads(capsys.readouterr().out)
    per_file = merged["per_file"]
    assert merged["files"] == 2 and not merged["failed"]
    assert merged["packets_sent"] == sum(f["packets_sent"] for f in per_file) >= 2
    assert merged["crc_ok"] == merged["packets_detected"] == merged["packets_sent"]
    assert merged["bits"] == sum(f["bits"] for f in per_file)
    assert merged["range_rmse_m"]["ir_first_interp"] < 0.3
