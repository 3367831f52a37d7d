"""BER against the BPSK theory curve (slow: about ten thousand bits)."""

import numpy as np
import pytest
from scipy.special import erfc

from dsp.receiver import Receiver
from dsp.receiver_config import ReceiverConfig
from dsp.results import PacketResult, RangingEpoch
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig


def bpsk_ber(ebn0_db: float) -> float:
    return 0.5 * erfc(np.sqrt(10 ** (ebn0_db / 10)))


@pytest.mark.slow
def test_ber_within_1_db_of_bpsk_theory_at_1e_3(wf):
    """Eb/N0 = 6.8 dB (theory 1e-3), both side bands, LO and tag clock offsets, random timing.

    Eb/N0 = sum_u SNR_u * K_act * T_tag / T_ofdm (eq. (103) with the coherent gain of the
    K_act subcarriers).  Within 1 dB of theory means BER <= Q(sqrt(2 Eb/N0)) at Eb/N0 - 1 dB.
    Packets in the first second (blind acquisition, reference averaging) are left out.
    """
    ebn0_db = 6.8
    gain_db = 10 * np.log10(2 * len(wf.active_subcarriers) * wf.ofdm_symbols_per_tag_symbol)
    snr = ebn0_db - gain_db
    sc = ScenarioConfig(
        duration_s=8.0, seed=2, snr_lower_db=snr, snr_upper_db=snr, lo_ppm=3.0, tag_clock_ppm=-90.0
    )
    emu = Emulator(wf, sc)
    tr = emu.truth
    rx = Receiver(
        wf,
        list(sc.bands),
        config=ReceiverConfig(tx_rx_distance_m=20.0),
        truth_packets=(tr.packet_start_sample, tr.packet_bits),
    )
    out = []
    for blk in emu.blocks():
        out += rx.push(blk.iq)
    out += rx.flush()
    steady = [r for r in out if isinstance(r, PacketResult) and r.time_s > 1.0 and r.bit_errors is not None]
    sent = int(np.sum(tr.packet_start_sample > wf.sample_rate_hz))
    assert len(steady) >= 0.9 * sent
    bits = len(steady) * wf.packet_bits
    ber = sum(p.bit_errors for p in steady) / bits
    assert bits > 8000
    assert ber <= bpsk_ber(ebn0_db - 1.0), (ber, bpsk_ber(ebn0_db))
    # the x axis: the receiver's own Eb/N0 (eq. 103 from measured SNRs) matches the configured one
    ep = [r for r in out if isinstance(r, RangingEpoch) and r.time_s > 1.0]
    est = 10 * np.log10(np.mean([sum(10 ** (e.snr_db[b] / 10) for b in ("lower", "upper")) for e in ep]))
    k_t = len(wf.active_subcarriers) * wf.ofdm_symbols_per_tag_symbol
    assert est + 10 * np.log10(k_t) == pytest.approx(ebn0_db, abs=0.5)
