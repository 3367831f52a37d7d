"""``replay DIR_OR_GLOB``: one task per capture on the sweep engine, summaries merged.

Replayed as a user replays: a calibration file made by the CW workflow of the same emulated radio
(``--circuitry-seed``) and the TX-RX distance typed on the command line (tests/support_ranging.py).
"""

from __future__ import annotations

import json

from backscatter.cli import main
from calibration.store import save_calibration
from dsp.waveform import get_profile
from experiments.common import workflow_calibration
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from tests.support_ranging import D0_TYPED_M, HW_SEED, range_limits_m


def test_replay_of_a_directory_merges_every_file(tmp_path, capsys):
    wf = get_profile("default")
    bands = ("central", "lower", "upper")
    cal_path = tmp_path / "cal" / "cal.h5"
    cal_path.parent.mkdir()
    save_calibration(cal_path, workflow_calibration(wf, bands, HW_SEED))
    limit = 0.0
    for seed in (1, 2):
        args = ["emulate", "--seed", str(seed), "--duration-s", "0.25", "--snr-db", "-20"]
        assert main([*args, "--circuitry-seed", str(HW_SEED), "--out", str(tmp_path / f"c{seed}.h5")]) == 0
        # the same scenario, for its limit: the worst side band's |model bias| + tolerance
        sc = ScenarioConfig(
            seed=seed, duration_s=0.25, snr_lower_db=-20, snr_upper_db=-20, circuitry_seed=HW_SEED
        )
        emu = Emulator(wf, sc)
        m_side = wf.packet_bits * emu.truth.tag_symbol_samples / wf.fft_size  # one packet
        for expected, tol in range_limits_m(emu, m_side, m_side).values():
            limit = max(limit, abs(expected - emu.truth.range_true_m) + tol)
    (tmp_path / "notes.txt").write_text("not a capture")
    capsys.readouterr()
    replay = ["replay", str(tmp_path), "--calibration", str(cal_path), "--tx-rx-distance-m", str(D0_TYPED_M)]
    assert main([*replay, "--json"]) == 0
    merged = json.loads(capsys.readouterr().out)
    per_file = merged["per_file"]
    assert merged["files"] == 2 and not merged["failed"]
    assert merged["packets_sent"] == sum(f["packets_sent"] for f in per_file) >= 2
    assert merged["crc_ok"] == merged["packets_detected"] == merged["packets_sent"]
    assert merged["bits"] == sum(f["bits"] for f in per_file)
    # every epoch's error is within ``limit`` (5 sigma of the bound at -20 dB over a packet, the
    # model's bias and the calibration's error: 0.23 m), so their RMS is too (was 0.3 m
    # with the true circuitry and distance)
    assert merged["range_rmse_m"]["ir_first_interp"] < limit, limit
