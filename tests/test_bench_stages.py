"""``backscatter bench`` stage figures: every ratio is the quotient of timings from the same run."""

from __future__ import annotations

import json
import statistics

import pytest

from backscatter.cli import main
from backscatter.commands.bench_stages import RATIO_STAGES, STAGES, describe, ratios, stage_figures


def test_ratios_are_median_copy_over_median_stage():
    t = {s: [1.0, 1.0, 1.0] for s in STAGES}
    t["copy"] = [3.0, 1.0, 2.0]  # median 2
    t["read"] = [100.0, 4.0, 2.0]  # median 4: not the mean, not the first round
    t["receiver"] = [8.0, 8.0, 0.5]
    r = ratios(t)
    assert set(r) == set(RATIO_STAGES)
    assert r["read"] == 0.5 and r["receiver"] == 0.25 and r["convert"] == 2.0


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    return stage_figures("default", 0.04, repeats=2, workdir=tmp_path_factory.mktemp("bench"))


def test_stage_figures_carry_the_raw_timings_behind_every_ratio(figures):
    r = figures
    assert r["profile"] == "default" and r["repeats"] == 2 and r["bands"] == 3
    assert r["samples"] == 3 * round(r["signal_s"] * r["capture_rate_hz"])
    assert set(r["timings_s"]) == set(STAGES)
    for stage, times in r["timings_s"].items():
        assert len(times) == 2 and all(t > 0 for t in times), stage
        assert r["median_s"][stage] == statistics.median(times)
    copy = statistics.median(r["timings_s"]["copy"])
    assert set(r["ratio_to_copy"]) == set(RATIO_STAGES)
    for stage in RATIO_STAGES:
        assert r["ratio_to_copy"][stage] == pytest.approx(copy / statistics.median(r["timings_s"][stage]))
        assert r["samples_per_s"][stage] == pytest.approx(r["samples"] / r["median_s"][stage])
    assert set(r["cpu_timings_s"]) == set(STAGES) and set(r["ratio_to_copy_cpu"]) == set(RATIO_STAGES)
    cpu_copy = statistics.median(r["cpu_timings_s"]["copy"])
    for stage in RATIO_STAGES:
        times = r["cpu_timings_s"][stage]
        assert len(times) == 2 and all(t >= 0 for t in times), stage
        if statistics.median(times) > 0:  # CPU clocks tick coarsely on some systems
            assert r["ratio_to_copy_cpu"][stage] == pytest.approx(cpu_copy / statistics.median(times))
    rep = statistics.median(r["timings_s"]["replay"])
    assert r["replay"]["realtime_factor"] == pytest.approx(r["signal_s"] / rep)
    one = statistics.median(r["timings_s"]["replay_one_process"])
    assert r["replay"]["one_process_realtime_factor"] == pytest.approx(r["signal_s"] / one)
    assert r["receiver_realtime_factor"] == pytest.approx(r["signal_s"] / r["median_s"]["receiver"])
    text = describe(r)
    assert "replay end to end" in text and "convert" in text
    # the conditions are the emulator's defaults (impairments on, the sample clock tied to the
    # LO, so it drifts by the LO's offset) and the receiver's (timing tracking on)
    c = r["conditions"]
    assert c["impairments"] and c["timing_tracking"]
    assert c["sample_clock_drift_ppm"] == c["lo_ppm"] != 0
    assert "impairments on" in text and "timing tracking on" in text


def test_stage_figures_refuse_no_repeats():
    with pytest.raises(ValueError, match="repeats"):
        stage_figures("default", 0.01, repeats=0)


def test_backscatter_bench_json_reports_every_stage_of_both_profiles(capsys):
    out = main(["bench", "--json", "--duration-s", "0.03", "--x410-duration-s", "0.02", "--repeats", "1"])
    assert out == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["profile"] for r in report["stages"]] == ["default", "x410-62m5"]
    assert [r["capture_rate_hz"] for r in report["stages"]] == [30.72e6, 62.5e6]
    for r, rx in zip(report["stages"], report["receiver"], strict=True):
        copy = r["timings_s"]["copy"][0]
        for stage in RATIO_STAGES:
            assert r["ratio_to_copy"][stage] == pytest.approx(copy / r["timings_s"][stage][0])
        assert r["replay"]["realtime_factor"] == pytest.approx(r["signal_s"] / r["timings_s"]["replay"][0])
        assert rx["receiver_over_copy"] == r["ratio_to_copy"]["receiver"]
    for name, n_nlos in (("nomp", 8), ("nomp_product", 8)):
        n = report[name]
        assert n["method"] == name and n["n_nlos"] == n_nlos and n["estimates"] > 0
        assert 0 < n["median_s"] <= n["max_s"]
