"""The experiment sweeps: ``--quick`` versions on a small in-process dask cluster.

Each quick sweep writes its raw results, figures and table; runs are seeded from
one root seed (same seed, same raw results) and checkpointed (an interrupted or
partly deleted sweep recomputes only what is missing).  About a minute in all.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom, ncx2, norm

from app.run import receive, summarise
from backscatter.commands import sweep_cmd
from captures.reader import open_capture
from dsp.packet import preamble_bits
from dsp.receiver import Receiver
from dsp.receiver_config import ReceiverConfig
from dsp.waveform import SPEED_OF_LIGHT_M_S, WaveformConfig
from experiments.common import read_runs
from experiments.engine import Checkpoint, EngineConfig, SweepError, seed_sequence
from experiments.nmae import PAPER_TABLE_I
from experiments.replay import expand_captures, merge_summaries, replay_many
from experiments.sweeps import SWEEPS, get_sweep, parse_overrides, run_sweep
from sdr.emulator.capture import write_emulated_capture
from sdr.emulator.scenario import ScenarioConfig

ENGINE = EngineConfig(n_workers=1, threads_per_worker=2, processes=False, progress=False)
SEED = 918_273_645


class Interrupted(Exception):
    """Raised from a result callback to cut a sweep short."""


def common_files(out: Path, name: str) -> None:
    for f in ("manifest.json", "checkpoint.jsonl", "runs.h5", "runs.csv", f"{name}.md", "summary.json"):
        assert (out / f).stat().st_size > 0, f
    summary = json.loads((out / "summary.json").read_text())
    pngs = [f for f in summary["files"] if f.endswith(".png")]
    assert pngs and all(Path(f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in pngs)
    assert summary["root_seed"] == SEED and summary["computed"] + summary["reused"] == summary["runs"]


@pytest.fixture(scope="module")
def nmae_quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("nmae")
    return out, run_sweep("nmae", out, quick=True, seed=SEED, engine=ENGINE)


def test_registry_matches_the_cli_choices():
    assert tuple(sorted(SWEEPS)) == sweep_cmd.SWEEP_NAMES


def test_seed_streams_are_nested_spawns_of_the_root():
    root = 12345
    nested = np.random.SeedSequence(root).spawn(4)[3].spawn(2)[1].spawn(3)[2]
    assert np.array_equal(seed_sequence(root, (3, 1, 2)).generate_state(4), nested.generate_state(4))


def test_nmae_quick_is_below_the_papers_hardware_figures(nmae_quick):
    out, summary = nmae_quick
    common_files(out, "nmae")
    cfg = get_sweep("nmae").quick
    runs = read_runs(out / "runs.h5")
    assert len(runs["task"]) == len(cfg.n_nlos) * cfg.n_scenarios
    for row in summary["table"]:
        paper_tx_rx, paper_tx_tag_rx = PAPER_TABLE_I[row["n_nlos"]]
        assert row["tx_rx_mean"] < paper_tx_rx
        assert row["tx_tag_rx_mean"] < paper_tx_tag_rx
    assert (out / "nmae_example_cir.png").exists()


def test_same_seed_same_results_and_resume_recomputes_only_missing_runs(nmae_quick, tmp_path):
    ref_out, ref = nmae_quick
    out = tmp_path / "nmae"
    done = []

    def stop_after_15(key: str, rec: dict) -> None:
        done.append(key)
        if len(done) == 15:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_sweep("nmae", out, quick=True, seed=SEED, engine=ENGINE, on_result=stop_after_15)
    lines = (out / "checkpoint.jsonl").read_text().splitlines()
    assert len(lines) == 15 and not (out / "runs.h5").exists()
    (out / "checkpoint.jsonl").write_text("\n".join(lines) + "\n" + lines[-1][:40])  # a write cut short

    resumed = run_sweep("nmae", out, quick=True, engine=ENGINE)  # the seed comes from the manifest
    assert (resumed["computed"], resumed["reused"]) == (ref["runs"] - 15, 15)
    a, b = read_runs(ref_out / "runs.h5"), read_runs(out / "runs.h5")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k

    # delete part of the outputs: the raw file and the last five finished runs
    ckpt = Checkpoint(out / "checkpoint.jsonl")
    records = list(ckpt.load().values())
    ckpt.clear()
    ckpt.append(records[:-5])
    (out / "runs.h5").unlink()
    again = run_sweep("nmae", out, quick=True, seed=SEED, engine=ENGINE)
    assert (again["computed"], again["reused"]) == (5, ref["runs"] - 5)
    after = ckpt.load()
    assert all(after[r["key"]]["finished_at"] == r["finished_at"] for r in records[:-5])
    assert all(after[r["key"]]["finished_at"] > r["finished_at"] for r in records[-5:])
    c = read_runs(out / "runs.h5")
    assert all(np.array_equal(a[k], c[k]) for k in a)

    with pytest.raises(SweepError, match="another configuration or root seed"):
        run_sweep("nmae", out, quick=True, seed=SEED + 1, engine=ENGINE)


def test_resolvability_quick_resolves_far_weak_paths_and_not_near_strong_ones(tmp_path):
    summary = run_sweep("resolvability", tmp_path, quick=True, seed=SEED, engine=ENGINE)
    common_files(tmp_path, "resolvability")
    cfg = get_sweep("resolvability").quick
    res_m = summary["resolution_m"]
    for case in cfg.cases:
        grid = np.array(summary["maps_m"][case]["ir_first"])  # [excess, power]
        far = [i for i, e in enumerate(cfg.excess_m) if e > 1.5 * res_m]
        weak = [j for j, p in enumerate(cfg.rel_power_db) if p <= -20]
        assert np.all(grid[np.ix_(far, weak)] < 1.5)  # the grid-step quantisation only
        near = [i for i, e in enumerate(cfg.excess_m) if e < res_m]
        strong = [j for j, p in enumerate(cfg.rel_power_db) if p >= 0]
        assert np.max(grid[np.ix_(near, strong)]) > 3.0


def detection_probability(ebn0_db: float, preamble_len: int, threshold: float) -> float:
    """Probability that one band's preamble statistic clears ``threshold`` at the true start.

    The statistic is ``|sum t z|**2 / (nv sum t**2)`` (dsp/tagdemod.py): with the preamble
    present it is ``|sqrt(E) + w|**2``, ``w ~ CN(0, 1)``, ``E = preamble_len * Eb/N0`` (the
    preamble's energy over the noise), so twice it is non-central chi-square with 2 degrees
    of freedom and non-centrality ``2 E``.  (The shape and fine-timing checks after detection
    can only lose more, which the 1 dB allowance covers.)"""
    energy = preamble_len * 10 ** (ebn0_db / 10)
    return float(ncx2.sf(2 * threshold, 2, 2 * energy))


BER_ALPHA = 1e-3  # a correct receiver fails the quick BER test with probability at most this
BER_LEVELS = 3  # the quick sweep's Eb/N0 levels (5, 6, 7 dB), each tested at BER_ALPHA / 3
PREAMBLE_SHARE = 13 / 125  # preamble bits in the sweep's bit count


def theory_ber(ebn0_db: float) -> float:
    """Coherent BPSK, ``Q(sqrt(2 Eb/N0))``, written here (not the package's ``bpsk_ber``)."""
    return float(norm.sf(np.sqrt(2 * 10 ** (ebn0_db / 10))))


def ber_interval(bits: int, ebn0_db: float) -> tuple[int, int]:
    """Errors a correct receiver leaves with probability <= BER_ALPHA / BER_LEVELS (half each side).

    The sweep counts all 125 bits of each detected packet; detection selects packets whose 13
    preamble bits were favourable, which can lower their error count by at most their share,
    so the lower edge is taken at ``p (1 - 13/125)``."""
    a = BER_ALPHA / BER_LEVELS / 2
    p = theory_ber(ebn0_db)
    return int(binom.ppf(a, bits, p * (1 - PREAMBLE_SHARE))), int(binom.isf(a, bits, p))


def quick_ber_fail_probability(loss_db: float, bits: int = 4000) -> float:
    """Probability that a receiver ``loss_db`` worse than theory fails at one level or more."""
    ok = 1.0
    for level in (5.0, 6.0, 7.0):
        lo, hi = ber_interval(bits, level)
        p = theory_ber(level - loss_db)
        ok *= 1 - (binom.sf(hi, bits, p) + binom.cdf(lo - 1, bits, p))
    return 1 - ok


def test_the_quick_ber_test_has_its_stated_power():
    """The design of test_ber_quick_sits_in_the_binomial_interval_of_bpsk_theory (milliseconds):
    at the quick sweep's 4,000 bits per level a correct receiver passes with >= 99.9 %; a 0.5 dB
    loss fails with probability 0.13 only, 1 dB with 0.95, 1.5 dB with 0.99998.  The >= 99 % power
    against 0.5 dB needs about 73,000 bits at 6.8 dB: tests/test_ber.py ``test_ber_full_power``."""
    assert get_sweep("ber").quick.ebn0_db == (5.0, 6.0, 7.0)
    assert quick_ber_fail_probability(0.0) <= BER_ALPHA
    assert quick_ber_fail_probability(0.5) == pytest.approx(0.13, abs=0.01)
    assert quick_ber_fail_probability(1.0) == pytest.approx(0.95, abs=0.01)
    assert quick_ber_fail_probability(1.5) > 0.9999


def test_ber_quick_sits_in_the_binomial_interval_of_bpsk_theory(tmp_path):
    """Per level, at the *configured* Eb/N0 (the emulator's truth): errors within the two-sided
    binomial interval of theory (:func:`ber_interval`; power in
    test_the_quick_ber_test_has_its_stated_power); undetected packets their own failure: matched
    packets at least the 0.1 % binomial quantile of the detection probability 1 dB below the
    configured Eb/N0 (the shape and fine-timing checks after detection can only lose more); the
    receiver's own Eb/N0 (the figure's x axis) within 0.5 dB of the configured one."""
    summary = run_sweep("ber", tmp_path, quick=True, seed=SEED, engine=ENGINE)
    common_files(tmp_path, "ber")
    wf = WaveformConfig()
    preamble_len = len(preamble_bits(wf))
    threshold = ReceiverConfig().detect_threshold
    for lv in summary["levels"]:
        level, bits, errors = lv["ebn0_set_db"], lv["bits"], lv["bit_errors"]
        assert abs(lv["ebn0_meas_db"] - level) < 0.5
        p_detect = detection_probability(level - 1.0, preamble_len, threshold)
        assert lv["packets_matched"] >= binom.ppf(0.001, lv["packets_sent"], p_detect), (lv, p_detect)
        assert bits == lv["packets_matched"] * wf.packet_bits >= 0.75 * 4000
        lo, hi = ber_interval(bits, level)
        assert lo <= errors <= hi, (lv, lo, hi)


def test_ranging_quick_interpolated_methods_go_below_the_grid_floor(wf, tmp_path):
    summary = run_sweep("ranging", tmp_path, quick=True, seed=SEED, engine=ENGINE)
    common_files(tmp_path, "ranging")
    floor = summary["grid_floor_m"]
    # a delay rounded to the CIR grid step c / (K df) errs uniformly within +-step / 2: RMSE
    # step / sqrt(12) (2.44 m / 3.46 = 0.704 m by default), written out here, not the sweep's helper
    step_m = SPEED_OF_LIGHT_M_S / (wf.cir_fft_size * wf.working_rate_hz / wf.fft_size)
    assert floor == pytest.approx(step_m / np.sqrt(12), rel=1e-12)
    assert floor == pytest.approx(0.7043, abs=1e-4)
    los = {t["attenuation_db"]: t for t in summary["table"] if t["n_nlos"] == 0}
    best = los[min(los)]
    assert best["crlb_m"] < floor / 10
    assert best["rmse_m"]["ir_first_interp"] < floor / 5 and best["rmse_m"]["music"] < floor / 2
    assert best["rmse_m"]["ir_first"] > best["rmse_m"]["ir_first_interp"]
    for t in los.values():  # one path per link: the product form H_1 H_2 is the compound model
        assert t["product_finite"] == t["kpath_finite"] == 4
        assert t["product_crlb_m"] == pytest.approx(t["kpath_crlb_m"], rel=1e-6)
    for t in summary["table"]:
        assert t["measurements"] == 4 * 2 and np.isfinite(t["crlb_m"])
        if t["lost"] == t["measurements"]:  # blind acquisition found no tag at this SNR (counted)
            assert t["attenuation_db"] > min(los)
            continue
        assert t["rmse_m"]["ir_first_interp"] > 0.5 * t["crlb_m"]  # no estimator beats the bound by much
    assert (tmp_path / "ranging_fig10_cdf.png").exists()


def test_cli_sweep_on_an_existing_scheduler(tmp_path, capsys):
    from distributed import LocalCluster

    parser = argparse.ArgumentParser()
    sweep_cmd.register(parser.add_subparsers())
    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster:
        argv = ["sweep", "nmae", "--quick", "--seed", str(SEED), "--out", str(tmp_path)]
        argv += ["--set", "n_nlos=0,4", "--set", "n_scenarios=2", "--scheduler", cluster.scheduler_address]
        args = parser.parse_args([*argv, "--json"])
        summary = args.func(args)
    printed = json.loads(capsys.readouterr().out)
    assert printed["scheduler"] == summary["scheduler"] == cluster.scheduler_address
    assert printed["rows"] == 4 and printed["config"]["n_nlos"] == [0, 4]


def test_overrides_parse_lists_and_refuse_unknown_keys():
    cfg = get_sweep("ranging").config_cls
    assert parse_overrides(cfg, ["n_nlos=0,4", "n_scenarios=3", "attenuation_db=[12, 20.5]"]) == {
        "n_nlos": ["0", "4"],
        "n_scenarios": 3,
        "attenuation_db": [12, 20.5],
    }
    with pytest.raises(SweepError, match="KEY one of"):
        parse_overrides(cfg, ["paths=3"])
    with pytest.raises(SweepError, match="n_scenarios"):
        run_sweep("ranging", Path("/nonexistent/never"), overrides={"n_scenarios": 0}, engine=ENGINE)


def replay_summary(path: str) -> dict:
    """The single-file replay summary with the truth's calibration (a picklable top-level function).

    The true circuitry and distance: this isolates replay_many's fan-out and merge (compared
    with these single-file summaries), not ranging accuracy."""
    with open_capture(path) as cap:
        truth = cap.truth()
        rx = Receiver(
            cap.waveform,
            cap.bands,
            cap.capture_rate_hz,
            ReceiverConfig(tx_rx_distance_m=truth.tx_rx_distance_m),
            dict(truth.cfr_circuitry),
            (truth.packet_start_sample, truth.packet_bits),
        )
        chunks = ((iq, lost) for _, iq, lost in cap.iter_chunks(1 << 18))
        return summarise(receive(rx, chunks, cap.waveform, cap.duration_s, truth))


def test_replay_many_fans_out_and_merges(wf, tmp_path):
    for seed in (1, 2):
        sc = ScenarioConfig(seed=seed, duration_s=0.25, snr_lower_db=-15, snr_upper_db=-15)
        write_emulated_capture(tmp_path / f"cap{seed}.h5", wf, sc)
    files = expand_captures(str(tmp_path))
    assert [Path(f).name for f in files] == ["cap1.h5", "cap2.h5"]
    assert expand_captures(str(tmp_path / "cap*.h5")) == files
    merged = replay_many([*files, str(tmp_path / "missing.h5")], replay_summary, None, False, 1, False)
    assert merged["files"] == 2 and [f["file"] for f in merged["failed"]] == [str(tmp_path / "missing.h5")]
    per = merged["per_file"]
    assert merged["bits"] == sum(s["bits"] for s in per) > 0
    assert merged["ber"] == merged["bit_errors"] / merged["bits"]
    n = np.array([s["ranging_epochs"] for s in per])
    r = np.array([s["range_rmse_m"]["ir_first_interp"] for s in per])
    assert merged["range_rmse_m"]["ir_first_interp"] == pytest.approx(np.sqrt(np.sum(n * r**2) / n.sum()))
    assert merged["range_rmse_m"]["ir_first_interp"] < 0.5


def test_merge_summaries_sums_counts_and_pools_rmse():
    a = {
        "bits": 100,
        "bit_errors": 1,
        "ranging_epochs": 1,
        "range_rmse_m": {"m": 3.0},
        "range_error_m": {"m": 1},
    }
    b = {
        "bits": 300,
        "bit_errors": 3,
        "ranging_epochs": 3,
        "range_rmse_m": {"m": 1.0},
        "range_error_m": {"m": 0},
    }
    m = merge_summaries([a, b])
    assert (m["bits"], m["bit_errors"], m["ber"]) == (400, 4, 0.01)
    assert m["range_rmse_m"]["m"] == pytest.approx(np.sqrt((9 + 3) / 4))
    assert m["range_error_m"]["m"] == pytest.approx(0.25)
    assert m["per_file"] == [a, b] and m["packets_sent"] is None


def test_impairments_sweep_decodes_every_packet_and_ranges_as_the_idealised_run(tmp_path):
    """One run at -7.5 ppm with one NLoS path.  Side bands at -20 dB per subcarrier give
    Eb/N0 near 20 dB per band (+40.8 dB of K_act T_tag / T_ofdm), where BPSK's bit error
    probability is below 1e-40: any CRC failure is a receiver fault.  The drift measured from
    the timing corrections must be the emulated one within 0.1 ppm (3 samples/s: half a second
    of such an error would leave the windows 1.5 samples off, far outside the loop's lock)."""
    cfg = {"lo_ppm": [-7.5], "n_nlos": [1], "duration_s": 0.6}
    summary = run_sweep("impairments", tmp_path, quick=True, seed=SEED, engine=ENGINE, overrides=cfg)
    common_files(tmp_path, "impairments")
    (row,) = read_runs_rows(tmp_path)
    assert row["packets_sent_real"] >= 5 and row["crc_ok_real"] == row["packets_sent_real"], row
    assert abs(row["drift_measured_ppm"] - (-7.5)) < 0.1, row
    assert summary["runs_meeting_target"] == 1, row


def read_runs_rows(out: Path) -> list[dict]:
    cols = read_runs(out / "runs.h5")
    n = len(next(iter(cols.values())))
    return [{k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in cols.items()} for i in range(n)]
