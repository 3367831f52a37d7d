"""NOMP through the receiver: method parameters from ReceiverConfig, both side bands jointly,
the range uncertainty on the epoch, on the wire and against the bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp.crlb import range_bound
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from sdr.results_wire import epoch_to_wire
from tests.test_receiver import epochs, run_receiver

SNR_DB = 0.0  # per subcarrier and symbol in each side band; 1500-symbol epochs add 31.8 dB


@pytest.fixture(scope="module")
def cw_run(wf):
    sc = ScenarioConfig(duration_s=0.12, seed=3, mode="cw", snr_lower_db=SNR_DB, snr_upper_db=SNR_DB)
    # truth calibration: the stage under test is the ranging against its bound, which the
    # workflow calibration's own error is not part of
    emu, out = run_receiver(
        wf,
        sc,
        calibration="truth",
        methods=("ir_first_interp", "nomp"),
        method_params={"nomp": {"max_paths": 8}},
    )
    return sc, emu, epochs(out)


def test_nomp_range_within_five_sigma_and_its_std_matches_the_bound(wf, cw_run):
    """Line of sight: the range error of an efficient estimator has the standard deviation of
    the bistatic bound, ``c sqrt(CRLB_0 + CRLB_u / 2)`` with two side bands fitted jointly
    (their information adds); the test allows 5 of them, and the reported ``range_std_m``
    (the fitted model's Fisher information at the estimated noise) within a factor 2."""
    sc, emu, eps = cw_run
    assert len(eps) == 2
    em = Emulator(wf, sc)
    bound = range_bound(
        wf, em.paths_tx_rx, em.paths_tx_tag, em.paths_tag_rx, sc.snr_central_db, SNR_DB, eps[0].n_symbols
    )
    sigma_m = math.hypot(bound.direct_rmse_m, bound.backscatter_rmse_m / math.sqrt(2))
    for e in eps:
        assert abs(e.range_m["nomp"] - emu.truth.range_true_m) <= 5 * sigma_m
        assert 0.5 * sigma_m <= e.range_std_m["nomp"] <= 2 * sigma_m
        assert "ir_first_interp" not in e.range_std_m  # no model, no uncertainty
        # jointly fitted: one delay for both side bands (equal calibration distances here)
        d = e.delay_s["nomp"]
        assert d["lower"] == pytest.approx(d["upper"], abs=1e-15) or sc.bands == ("central", "upper")


def test_range_std_goes_on_the_wire(wf, cw_run):
    _, emu, eps = cw_run
    _, fields, _ = epoch_to_wire(eps[0], wf, emu.truth.range_true_m)
    assert fields["range_std_m"] == {"nomp": pytest.approx(eps[0].range_std_m["nomp"])}
    assert np.isfinite(fields["range_std_m"]["nomp"])


def test_range_std_survives_the_codec_and_is_optional(wf, cw_run):
    from sdr.transport.codec import decode, encode_result

    _, _, eps = cw_run
    kind, fields, arrays = epoch_to_wire(eps[0], wf)
    sid = "0" * 32
    got = decode(encode_result(kind, fields, arrays, stream_id=sid, seq=1))
    assert got.fields["range_std_m"] == pytest.approx(eps[0].range_std_m)
    older = {k: v for k, v in fields.items() if k != "range_std_m"}  # a sender from before the field
    assert "range_std_m" not in decode(encode_result(kind, older, arrays, stream_id=sid, seq=2)).fields
