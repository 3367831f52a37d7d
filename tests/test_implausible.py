"""A range physics forbids is flagged, not published silently (app/run.py)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from app.run import Run, summarise
from captures.results_io import write_results
from dsp.cir import cfr_to_cir
from dsp.epoch import RangingJob, range_methods
from dsp.ranging import implausibility
from dsp.results import RangingEpoch
from dsp.waveform import WaveformConfig
from gui.panels.cir import CirPanel
from sdr.results_wire import epoch_to_wire


def _run(range_m: float, d0: float | None) -> dict:
    wf = WaveformConfig()
    k = len(wf.active_subcarriers)
    cfr = {b: np.ones(k, complex) for b in ("central", "upper")}
    ep = RangingEpoch(
        0.0, 1500, cfr, {}, {}, {"ir_first_interp": range_m}, {}, {"central": 30.0, "upper": 0.0}, {}
    )
    run = Run(wf, ["central", "upper"], 0.1, None, epochs=[ep], tx_rx_distance_m=d0)
    return summarise(run)["implausible"]


def test_a_range_below_the_tx_rx_distance_is_flagged():
    """TX-tag-RX >= TX-RX (triangle inequality); 15 m against a 20 m baseline is impossible."""
    flags = _run(15.0, 20.0)
    assert "ir_first_interp" in flags and "below the TX-RX distance" in flags["ir_first_interp"]


def test_a_range_on_the_baseline_within_the_noise_margin_is_not_flagged():
    """A tag on the TX-RX line gives exactly d0; noise may put it a little below (margin c/B/10)."""
    assert _run(19.9, 20.0) == {}
    assert _run(35.0, 20.0) == {}
    assert _run(5.0, None) == {}  # no d0 known: excess path lengths, nothing to check


# ----- the rule, and every epoch flagged (issue: never publish what physics forbids unflagged) ---
def test_the_rule_is_the_triangle_inequality_with_a_tenth_of_a_cell_and_the_wrap():
    """``implausibility``: below ``d0`` by more than ``c / B_occ / 10`` (1.25 m here), or beyond
    ``R_max / 2`` (a first path found before the direct path's wraps to about 10 km)."""
    wf = WaveformConfig()
    margin = 0.1 * wf.resolution_m
    assert implausibility(20.0 - 1.01 * margin, 20.0, wf) is not None
    assert implausibility(20.0 - 0.99 * margin, 20.0, wf) is None
    assert implausibility(5.0, None, wf) is None  # excess path lengths: no d0 to check against
    wrapped = wf.max_range_m - 30.0  # a delay 30 m before the direct path's, modulo R_max
    assert "wrapped" in implausibility(wrapped, None, wf)
    assert "wrapped" in implausibility(wrapped, 20.0, wf)
    assert implausibility(0.499 * wf.max_range_m, None, wf) is None


def _job(wf, side_delay_s: float, d0: float | None) -> RangingJob:
    """A noise-free single path per band: the central at 200 ns, the side band at ``side_delay_s``
    (eq. (77)-(78): range = d0 + c (t_side - t_central))."""
    f = wf.active_freqs_hz
    cfr = {b: np.exp(-2j * np.pi * f * t) for b, t in (("central", 200e-9), ("upper", side_delay_s))}
    return RangingJob(
        wf=wf,
        cfr=cfr,
        cir={b: cfr_to_cir(h, wf) for b, h in cfr.items()},
        reliability={"upper": 1.0},
        methods=("ir_first_interp",),
        ir_threshold=0.3,
        tx_rx_distance_m=d0 or 0.0,
        d_cal_m={"upper": 0.0},
        method_params={},
        tx_rx_known=d0 is not None,
    )


def test_every_epoch_carries_its_flag_to_the_wire_the_results_file_and_the_gui(tmp_path):
    """A side-band path 100 ns (30 m) before the central one: the range is d0 - 30 m, below the
    TX-RX distance; with no d0 it wraps to R_max - 30 m.  100 ns later instead: plausible."""
    wf = WaveformConfig()
    method = "ir_first_interp"
    # the interpolated first peak of a noise-free single path lies within half a CIR grid step
    # (1.2 m) of it, far inside the 30 m this test moves the range by
    step = wf.cir_grid_step_m / 2
    bad = range_methods(_job(wf, 100e-9, 41.7))
    assert bad.range_m[method] == pytest.approx(41.7 - 29.98, abs=step)
    assert "below the TX-RX distance" in bad.implausible[method]
    assert "wrapped" in range_methods(_job(wf, 100e-9, None)).implausible[method]
    good = range_methods(_job(wf, 300e-9, 41.7))
    assert good.range_m[method] == pytest.approx(41.7 + 29.98, abs=step) and good.implausible == {}
    # the epoch, its wire message, the GUI's line and the results file
    k = len(wf.active_subcarriers)
    cfr = {b: np.ones(k, complex) for b in ("central", "upper")}
    cir = {b: np.ones(wf.cir_fft_size, complex) for b in cfr}
    snr = {"central": 30.0, "upper": 0.0}
    epochs = []
    for outcome in (bad, good):
        ep = RangingEpoch(0.0, 1500, cfr, cir, {}, {}, {}, snr, {})
        epochs.append(outcome.fill(ep))
    assert epochs[0].implausible == bad.implausible and epochs[1].implausible == {}
    kind, fields, _ = epoch_to_wire(epochs[0], wf)
    assert kind == "epoch" and fields["implausible"] == bad.implausible
    assert "IMPLAUSIBLE" in CirPanel._summary(fields)
    assert "IMPLAUSIBLE" not in CirPanel._summary(epoch_to_wire(epochs[1], wf)[1])
    run = Run(wf, ["central", "upper"], 0.1, None, epochs=epochs, tx_rx_distance_m=41.7)
    summary = summarise(run)
    assert summary["implausible_epochs"] == {method: 1}
    write_results(tmp_path / "r.h5", run, summary)
    with h5py.File(tmp_path / "r.h5") as f:
        assert list(f["epochs"].attrs["methods"]) == [method]
        np.testing.assert_array_equal(f["epochs/implausible"][()], [[True], [False]])
