"""The packet search (dsp/burst.py) on tag samples whose answer is known exactly (issue 19, the
mutation check: docs/MUTATION.md, session 11).

The receiver tests (tests/test_receiver.py) run the search on the emulator's captures, through the
whole chain: its fine timing is then off by up to some 60 samples (the chain's sub-window delays),
so they can check a start only within a tag symbol, and they meet data that correlates with the
code only in one high-SNR stream.  Here the search runs on the tag samples themselves, built from
the model the search assumes (SYSTEM.md section 4, dsp/tagdemod.py's module doc):

    ``z[b, m] = g_b exp(j 2 pi f_b t_m) sum_j s_j O[j, m] + noise``,  ``t_m = (s_m + N / 2) / fs``,

``O`` the overlap of tag symbol ``j`` (of a packet starting at ``t0``) with window ``m`` (written
here from its definition, not with the receiver's ``overlap_matrix``), the packets' bits from
``dsp.packet.build_packet`` (checked against the air interface by tests/test_packet.py and the
oracle's), the noise complex Gaussian of the variance ``nv_b`` the search is told, seeded.  The
emulator is not used: its captures reach the search only through the chain, whose timing error
would hide the fine timing's and whose clean packets do not reach the recovery paths.  A stand-in receiver
(:class:`_Rx`) gives :class:`dsp.burst.BurstSearch` these samples and records what it hands back
(the epoch's windows, time and weights; the CFO update; the reference refresh), so every number
a packet publishes (start, time, detection statistic, Eb/N0, truth match) and every path of the
search (a candidate that is "data", "inside" a packet, or "yields" to a stronger preamble) is
checked against its derivation.  Each test names, in its docstring, mutants it kills.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dsp.burst import BurstSearch
from dsp.packet import bits_to_symbols, build_packet, preamble_bits
from dsp.packet_checks import energy_match
from dsp.receiver_config import ReceiverConfig
from dsp.results import PacketResult
from dsp.tagdemod import preamble_template
from dsp.waveform import WaveformConfig

WF = WaveformConfig()
N = WF.fft_size  # 1024
FS = WF.working_rate_hz  # 30.72 MS/s
PERIOD = FS / WF.tag_symbol_rate_baud  # 15,360 samples (15 windows) a tag symbol
BURST = round(WF.burst_period_s * FS)  # 3,072,000 samples (3,000 windows) between packets
PRE = bits_to_symbols(preamble_bits(WF))  # the 13 +-1 symbols of the Barker code
STEP = 2 * N / 32  # the fine timing's candidate grid: 33 points over +-N, 64 samples apart
BANDS = ("lower", "upper")


class _Rx(BurstSearch):
    """The receiver state ``BurstSearch`` reads, over given tag samples ``z`` ``[band, window]``
    (side bands lower and upper, rows 1 and 2 of central, lower, upper), and a record of what it
    writes.  ``visible`` windows of the history are shown (the rest arrives later: a stream)."""

    def __init__(self, starts, z, nv, truth=None, calibration=None, phases=None):
        self.wf, self.n, self.fs = WF, N, FS
        self.bands = ["central", *BANDS]
        self.sides = list(BANDS)
        self._ref = {b: np.ones(4) for b in BANDS}
        self._history = [None]  # (non-empty: read only through the methods below)
        self.cfg = ReceiverConfig()
        self._search_from = None
        self.truth_packets = truth
        self._preamble = PRE
        self.cfo_hz = {"central": 0.0, "lower": -1000.0, "upper": 2000.0}
        self.calibration = calibration
        self.starts, self.z, self.nv = starts, z, np.asarray(nv, float)
        self.ph = np.zeros(z.shape) if phases is None else phases
        self.visible = starts.size
        self.epochs: list = []
        self.refreshed: list = []
        self.decoded: list = []  # (start of the coarse window, what _decode returned)

    def _tag_symbol_samples(self) -> float:
        return PERIOD

    def _stacked(self):
        return self.starts[: self.visible], self.z[:, : self.visible], [1, 2]

    def _z_noise(self, rows):
        return self.nv

    def _phases(self, rows, lo, hi):
        return self.ph[:, lo:hi]

    def _set_cfo(self, band, cfo_hz):
        self.cfo_hz[band] = cfo_hz

    def _windows_kept(self, lo, hi):
        return True

    def _epoch(self, lo, hi, weights, time_s):
        e = SimpleNamespace(
            lo=lo, hi=hi, weights=weights, time_s=time_s, cfr={b: np.full(8, 2.0 - 1j) for b in weights}
        )
        self.epochs.append(e)
        return e

    def _refresh_reference(self, band, cfr):
        self.refreshed.append((band, cfr))

    def _decode(self, starts, z, rows, nv, k, period, yield_on_crc_error=False):
        r = super()._decode(starts, z, rows, nv, k, period, yield_on_crc_error)
        self.decoded.append((float(starts[k]), r if isinstance(r, str | tuple) else "packet"))
        return r

    def search(self, chunk: int | None = None) -> list:
        """The search over the history, all at once (``final``) or as a stream: ``chunk`` more
        windows visible before each non-final search, then a final one."""
        out = []
        if chunk:
            for m in range(chunk, self.starts.size, chunk):
                self.visible = m
                out += self._search_packets(final=False)
        self.visible = self.starts.size
        return out + self._search_packets(final=True)


def _packet(seed: int, barker_at: int | None = None, flips: int = 0) -> np.ndarray:
    """A packet's symbols (tag ID 0x5A5A, a random payload from ``seed``); ``barker_at``: the
    payload holds the Barker code there (payload bit index), with its first ``flips`` bits
    flipped (squared correlation ``((13 - 2 flips) / 13)**2`` with the preamble)."""
    payload = np.random.default_rng(seed).integers(0, 2, WF.payload_bits).astype(np.uint8)
    if barker_at is not None:
        code = preamble_bits(WF).copy()
        code[:flips] ^= 1
        payload[barker_at : barker_at + code.size] = code
    return bits_to_symbols(build_packet(WF, 0x5A5A, payload))


def _wave(t0: float, symbols: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The tag's +-1 waveform on the windows ``[window]``: each window's mean over its ``N``
    samples, written here from the definition (``sum_j s_j |[a_j, a_j + T) & [s, s + N)| / N``,
    ``a_j = t0 + j T``), not with the receiver's ``overlap_matrix``."""
    a = t0 + PERIOD * np.arange(len(symbols))[:, None]
    s = starts[None, :].astype(float)
    return symbols @ (np.clip(np.minimum(s + N, a + PERIOD) - np.maximum(s, a), 0.0, None) / N)


def _samples(m: int, packets, gains, freqs=(0.0, 0.0), nv=(1.0, 1.0), seed=None, first: int = 0):
    """``(starts, z)``: ``m`` windows from window ``first``; ``packets`` ``[(t0, symbols)]``; no
    noise when ``seed`` is None."""
    starts = (np.arange(m) + first) * N
    wave = np.zeros(m)
    for t0, s in packets:
        wave += _wave(t0, s, starts)
    times = (starts + N / 2) / FS
    z = np.asarray(gains)[:, None] * np.exp(2j * np.pi * np.outer(freqs, times)) * wave
    if seed is not None:
        rng = np.random.default_rng(seed)
        sd = np.sqrt(np.asarray(nv, float)[:, None] / 2)
        z = z + sd * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))
    return starts.astype(np.int64), z


def _packets(out) -> list[PacketResult]:
    return [r for r in out if isinstance(r, PacketResult)]


# the fine timing's candidates lie on a grid 64 samples apart around a window start: offsets
# from window 1000 that are grid points (0, +-1, +-5, +-8 steps: the middle, the next points, the
# half-window) and, last, a grid point of the neighbouring window
GRID_STARTS = [1000 * N + i * STEP for i in (0, 1, -1, 5, -5, 8, -8, 13)]


@pytest.mark.parametrize("t0", GRID_STARTS)
def test_fine_timing_finds_a_preamble_on_the_candidate_grid_exactly(t0):
    """A preamble alone (the tag idle before and after it), noise-free, at a start ``t0`` on the
    candidate grid.  The fine timing maximises ``sum_b |z_b . w_c|**2 / (nv_b |w_c|**2)`` over the
    candidates' preamble waves ``w_c``; with ``z_b = g_b w_t0`` Cauchy-Schwarz gives
    ``|w_t0 . w_c|**2 <= |w_t0|**2 |w_c|**2``, equal only for ``w_c = w_t0``: the start is ``t0``
    exactly, ``time_s`` is ``t0 / fs`` (the epoch's too), and the detection statistic published
    is the maximum, ``sum_b |g_b|**2 |w_t0|**2 / nv_b`` (to float rounding, 1e-9).  (With data
    after the preamble the first data bits share the last windows and move the maximum by up to
    one grid step, 64 samples: found by this session, see docs/MUTATION.md.)

    Kills (session 11, docs/mutation_burst_survivors.txt): the candidate grid's ends and size
    (``linspace(+1, 1)``, ``(-2, 1)``, ``(-1, 2)``, 34 points), the statistic's power law, norm
    and summing axis (``** 3``, ``* 2``, ``waves ** 3``, ``nv / ...``, ``axis=1``), the
    preamble span cut short (``p_end - 3``, ``/ period / n``), ``time_s = t0 * fs`` (packet and
    epoch)."""
    gains, nv = np.array([0.5, 0.3j]), np.array([0.01, 0.02])
    starts, z = _samples(3100, [(t0, PRE)], gains)
    rx = _Rx(starts, z, nv)
    p = _packets(rx.search())
    assert len(p) == 1 and len(rx.epochs) == 1
    assert p[0].start_sample == t0
    assert p[0].time_s == t0 / FS and rx.epochs[0].time_s == t0 / FS
    w = _wave(t0, PRE, starts)
    assert p[0].detection == pytest.approx(float(np.sum(np.abs(gains) ** 2 / nv)) * float(w @ w), rel=1e-9)


def test_a_preamble_start_off_the_grid_is_found_within_half_a_step():
    """Noise-free preambles at starts between grid points (a quarter and three eighths of a step
    from one): the statistic falls off about linearly and alike either side of the true start
    (each sign change of the code and both its ends lose the same overlap whichever way a
    candidate is shifted), so the nearest grid point wins, away from the tie at half a step:
    the start is within half a step (32 samples)."""
    for t0 in (1000 * N + 3 * STEP + STEP / 4, 1000 * N - 7 * STEP - 3 * STEP / 8):
        starts, z = _samples(3100, [(t0, PRE)], np.array([1.0, 1.0j]))
        p = _packets(_Rx(starts, z, [0.1, 0.1]).search())
        assert len(p) == 1 and abs(p[0].start_sample - t0) <= STEP / 2 + 1e-9, t0


def test_the_packet_s_eb_n0_is_the_matched_filter_s_from_the_known_snr():
    """A packet at a window start (each of its symbols exactly 15 windows: ``O`` 0 or 1), Eb/N0
    10 dB in each band (``|g|**2 = 10 nv / 15``), residual frequencies of 1.3 and -0.7 Hz.
    Coherent MRC of two bands adds their Eb/N0: ``15 sum_b |g_b|**2 / nv_b`` = 20, 13.01 dB.  The
    estimate uses the gain fitted over the packet's 1875 windows, ``|g|**2`` with relative
    standard deviation ``sqrt(2 nv / (1875 |g|**2))`` = 0.04 a band, 0.028 for the sum: 0.12 dB;
    within 5 deviations, 0.6 dB (``11 log10`` reads 14.3 dB).  The bits, the CRC and the start
    (on the window grid: the grid's middle point, within one grid step at this SNR) are right.

    Kills: ``ebn0 = 11 * log10``, ``10 / log10``, ``None``."""
    t0 = 1000.0 * N
    nv = np.array([1.0, 2.0])
    gains = np.sqrt(10 * nv / 15) * np.exp(1j * np.array([0.4, -2.0]))
    s = _packet(3)
    starts, z = _samples(3100, [(t0, s)], gains, (1.3, -0.7), nv, seed=11)
    p = _packets(_Rx(starts, z, nv).search())
    assert len(p) == 1 and p[0].crc_ok and np.array_equal(p[0].bits, ((1 - s) / 2).astype(np.uint8))
    assert abs(p[0].start_sample - t0) <= STEP
    assert abs(p[0].ebn0_db - 10 * np.log10(20.0)) < 0.6


def test_the_epoch_weights_undo_phase_frequency_and_gain_and_the_cfo_moves_half_the_residual():
    """Noise-free packet, gains of unequal phase, residual frequencies 1.3 / -0.7 Hz, the raw
    windows' nominal phases ``phi_m`` (cycles) random.  The ranging weights are the re-modulated
    tag wave with the nominal phase, the residual and the gain's phase removed at unit gain:
    ``weights_b[m] * g_b a[m] exp(j 2 pi (phi_m + f_b t_m)) = |g_b| a'[m] a[m]`` (``a'`` the wave
    at the start found, ``a`` at the true one; the fine timing's bias), to the residual
    frequency's error (the demodulator's parabola: under 1.5e-5 Hz noise-free, 6e-6 rad over the
    packet; limit 1e-4 of ``|g_b|``).  The epoch spans every window the packet touches (from the
    fine timing's 2-window margin before it) and ends within a symbol after it.  Each side
    band's CFO moves by half the residual found (the receiver's frequency loop gain, 0.5, as in
    CW mode), within 1e-3 Hz.  With a calibration, the reference refreshed is the epoch's
    calibrated CFR times the calibration (the references are uncalibrated).

    Kills: the weights' phase (``+2``, ``-3``, ``-2 / pi``, ``phases - f t``, ``f / t``,
    ``/ (phases ...)``, ``/ cis``), gain (``/ conj(g)``, ``* abs(g)``); the CFO update (``1.5 *``,
    ``0.5 /``); the epoch's end (``hi - 3``, ``pkt * period * n``: the rest of the history) and
    start (``lo = k + 2``); the refresh (``/ calibration``)."""
    t0 = 700 * N + 3 * STEP
    gains = np.array([0.8 * np.exp(0.9j), 0.5 * np.exp(-2.4j)])
    freqs = np.array([1.3, -0.7])
    s = _packet(4)
    starts, z = _samples(3100, [(t0, s)], gains, freqs)
    ph = np.random.default_rng(5).uniform(0, 1, z.shape)
    cal = {b: np.exp(1j * np.arange(8)) * (1.5 + i) for i, b in enumerate(BANDS)}
    rx = _Rx(starts, z, [1e-3, 1e-3], calibration=cal, phases=ph)
    cfo0 = dict(rx.cfo_hz)
    p = _packets(rx.search())
    assert len(p) == 1 and p[0].crc_ok
    (e,) = rx.epochs
    st = starts[e.lo : e.hi]
    # the packet's windows and the fine timing's margin (a window either side), and no more than
    # a symbol after it (the central band averages every window of the epoch: the next packet's
    # time must not be in it)
    assert st[0] <= t0 - N and t0 + s.size * PERIOD <= st[-1] < t0 + (s.size + 1) * PERIOD
    a_found = _wave(p[0].start_sample, s, st)  # the weights' wave
    a_true = _wave(t0, s, st)  # the samples'
    for i, b in enumerate(BANDS):
        raw = z[i, e.lo : e.hi] * np.exp(2j * np.pi * ph[i, e.lo : e.hi])
        want = abs(gains[i]) * a_found * a_true
        np.testing.assert_allclose(e.weights[b] * raw, want, rtol=0, atol=1e-4 * abs(gains[i]))
        assert rx.cfo_hz[b] - cfo0[b] == pytest.approx(0.5 * freqs[i], abs=1e-3)
    assert [b for b, _ in rx.refreshed] == list(BANDS)
    for b, cfr in rx.refreshed:
        np.testing.assert_allclose(cfr, (2.0 - 1j) * cal[b], rtol=1e-12)


def test_a_found_packet_matches_a_true_start_within_half_a_tag_symbol():
    """The truth match (receivers given ``truth_packets``): the true start nearest the start found,
    if within ``T / 2`` (the largest window that can never hold two packets' starts nor miss a
    start found within half a symbol).  A noise-free preamble found at exactly ``t0`` (as in the
    grid test) against true starts ``0.45 T`` and ``0.55 T`` away: the first matches, with the
    bit errors counted against its bits (3 flipped here), the second does not.

    Kills: ``period * 2``, ``period / 3`` in the match."""
    t0 = 1000.0 * N
    starts, z = _samples(3100, [(t0, PRE)], np.array([1.0, 1.0]))
    bits = ((1 - np.r_[PRE, np.ones(WF.packet_bits - PRE.size)]) / 2).astype(np.uint8)
    wrong = bits.copy()
    wrong[[20, 50, 90]] ^= 1
    for offset, index in ((0.45, 1), (-0.45, 1), (0.55, None), (-0.55, None)):
        truth = (np.array([0.0, t0 + offset * PERIOD, t0 + 4 * PERIOD]), np.array([bits, wrong, bits]))
        (p,) = _packets(_Rx(starts, z, [0.1, 0.1], truth=truth).search())
        assert p.start_sample == t0 and p.truth_index == index, offset
        assert p.bit_errors == (None if index is None else 3)


def test_the_template_follows_the_tag_period():
    """The preamble template is kept while the tag period is unchanged (the same array) and made
    again when it changes (a decoded packet's CFO update): it equals the template of the new
    period.  Kills: ``cached[0] == period`` (the old template kept after a change)."""
    rx = _Rx(np.arange(4) * N, np.zeros((2, 4)), [1.0, 1.0])
    a = rx._template(PERIOD)
    assert rx._template(PERIOD) is a
    longer = PERIOD * (1 + 3e-4)  # a tag clock 300 ppm slow
    np.testing.assert_array_equal(rx._template(longer), preamble_template(PRE, longer, N))


def _cut_stream(seed: int, ebn0_db: float, left: int = 25):
    """A stream joined inside packet 0, ``left`` of its 125 symbols to come, at Eb/N0 ``ebn0_db``
    (the two bands' sum; gains of unequal phase, residual frequencies 0.6 / -0.9 Hz), with three
    complete packets after it, a burst period apart."""
    nv = np.array([1.0, 1.0])
    g = np.sqrt(10 ** (ebn0_db / 10) / 2 * nv / 15) * np.exp(1j * np.array([0.3, 2.0]))
    t_first = -(WF.packet_bits - left) * PERIOD + 357.0
    pk = [(t_first + i * BURST, _packet(100 * seed + i)) for i in range(4)]
    starts, z = _samples(int(3 * BURST // N + 2500), pk, g, (0.6, -0.9), nv, seed=seed)
    truth = (np.array([t for t, _ in pk]), np.array([((1 - s) / 2).astype(np.uint8) for _, s in pk]))
    return starts, z, nv, truth


# seed, Eb/N0 (dB), symbols of packet 0 left in the stream, the paths the search takes (from a
# pilot run of these seeds; asserted, so a change of the search that avoids them is seen),
# whether a CRC-failed candidate is reported at the stream's start (the idle test cannot look
# before it: fewer than four symbols there)
CUT_STREAMS = [
    (0, 12.0, 100, {"data", "inside"}, False),
    (2, 12.0, 100, {"yield", "inside"}, False),
    (4, 9.0, 100, set(), True),
    (1, 12.0, 25, {"yield"}, False),
]


@pytest.mark.parametrize(("seed", "ebn0_db", "left", "paths", "false_start"), CUT_STREAMS)
def test_a_stream_cut_inside_a_packet_recovers_every_later_packet(seed, ebn0_db, left, paths, false_start):
    """A stream joined inside a packet at low SNR (per-window SNR below 0 dB: the energy test
    makes no decision, the gain test, the idle test and the stronger-preamble rule do), so that
    the data left of packet 0 correlates with the code at candidates: "data" (the gain test
    rejects it), "inside" (the tag was on before it), "yield" (its CRC fails and a stronger
    preamble lies in its span).  Each of packets 1-3 is found once, its CRC and bits right
    (Eb/N0 9-12 dB: a packet error rate of a few per cent at 9 dB, none in these seeds), matched
    to its true start; the output holds nothing but packets and epochs.  The search resumes as
    its rules say (dsp/burst.py): after "inside" at ``t0`` not before ``t0`` plus the idle time
    less the checked symbols (57 symbols); after "yield", past the candidate, and, when packet
    0 ends within 50 symbols of the stream's start (``left`` 25), at packet 1: a yielding
    candidate lies in the first 5 symbols (later ones meet the idle test), so the stronger
    preamble within its 125-symbol span is packet 1's (75 idle symbols after packet 0's end),
    and the next candidate decoded is that packet.  (After "data" the search resumes a window
    after the statistic's first crossing, which can lie before the candidate: the same
    candidate may be decoded again.)  Fed as a stream (300 or 977 windows at a time, non-final
    searches, then a final one), the packets found are the same, with the same starts and
    statistics.

    Kills: the recovery paths' strings (``"XXdataXX"``, ``"XXyieldXX"``, their tests in the
    search), their resume points (after "data": ``- n``, ``i0 - hits[0]``, ``None``; after
    "inside": ``result[1] - idle``, ``result[2]``, ``None``; after "yield": ``+ len(tpl)``,
    ``i0 - stronger``, ``None``), ``continue`` to ``break`` after them, ``yield_on_crc_error``
    inverted, ``or not crc_ok``, the stronger preamble not looked for (``None``, ``k + i0``)."""
    starts, z, nv, truth = _cut_stream(seed, ebn0_db, left=left)
    rx = _Rx(starts, z, nv, truth=truth)
    out = rx.search()
    assert all(isinstance(r, PacketResult | SimpleNamespace) for r in out)
    p = _packets(out)
    if false_start:  # a CRC-failed candidate inside the first five symbols, matched to nothing
        assert p[0].start_sample < 5 * PERIOD and not p[0].crc_ok and p[0].truth_index is None
        p = p[1:]
    assert [q.truth_index for q in p] == [1, 2, 3]
    assert all(q.crc_ok and q.bit_errors == 0 for q in p)
    kinds = [r if isinstance(r, str) else r[0] for _, r in rx.decoded]
    assert paths <= set(kinds), kinds
    for (s, r), (s_next, r_next) in zip(rx.decoded, rx.decoded[1:], strict=False):
        if isinstance(r, tuple):
            assert s_next >= r[1] + 57 * PERIOD - 1e-6
        elif r == "yield":
            assert s_next > s and (left > 50 or r_next == "packet")
    for chunk in (300, 977):
        streamed = _packets(_Rx(starts, z, nv, truth=truth).search(chunk=chunk))
        assert [(q.start_sample, q.detection) for q in streamed] == [
            (q.start_sample, q.detection) for q in _packets(out)
        ]


def test_a_packet_at_the_end_of_the_stream_is_decoded_once_its_windows_are_there():
    """At the stream's end (the final search), a packet is decoded when the history holds its
    ``125 x 15`` windows and the fine timing's two of margin after them (``pkt_windows``): here
    a noise-free packet starting on window 600, the history ending at window 600 + 1877 exactly.
    Searched as a stream (300 windows at a time) too: found once, at the same start.

    Kills: ``pkt_windows + 3``, ``k + pkt_windows >= len``, ``(1 if final ...)`` in ``last``."""
    t0 = 600.0 * N
    s = _packet(6)
    starts, z = _samples(600 + 1877, [(t0, s)], np.array([0.6, 0.6j]))
    for chunk in (None, 300):
        p = _packets(_Rx(starts, z, [0.05, 0.05]).search(chunk=chunk))
        assert len(p) == 1 and p[0].crc_ok and abs(p[0].start_sample - t0) <= STEP, chunk


def test_a_packet_cut_by_the_end_of_the_stream_is_not_decoded():
    """The stream ends 5 windows before a noise-free packet's last window (a third of its last
    symbol and the fine timing's margin missing).  The Barker code's sidelobes keep the statistic
    under the threshold until the template is within a symbol of the preamble, so the final
    search (start windows up to ``len - pkt_windows``, 5 before the preamble's) meets its
    crossing, and its maximum is the preamble; the packet's windows are not all there, and the
    search decodes only whole packets (so what a replay reports does not depend on where the
    capture ends inside a packet's last symbol): nothing is decoded.  Kills:
    ``k - pkt_windows > len`` (the packet decoded from 10 of its last symbol's 15 windows), and
    ``break`` to ``continue`` there (the search loops on the same candidate)."""
    s = _packet(6)
    starts, z = _samples(600 + 1877 - 5, [(600.0 * N + 5 * STEP, s)], np.array([0.6, 0.6j]))
    rx = _Rx(starts, z, [0.05, 0.05])
    assert rx.search() == [] and rx.decoded == []


def test_at_high_snr_data_is_rejected_by_energy_a_template_at_a_time(monkeypatch):
    """A stream joined inside a packet (100 symbols of it to come) at Eb/N0 30 dB (per-window SNR
    18 dB): the data correlating with the code is rejected by the energy test before any
    decoding, and the search then moves one template (196 windows) on, not one window (which
    made some 1,500 candidates of a packet each cost a search: docs in dsp/burst.py).  So the
    energy test runs at most ``ceil(1500 / 196)`` = 8 times on the data, and twice for each of
    the 3 packets (the search's test and the decoder's): at most 14 calls.  Every packet after
    the cut is decoded.  Kills: ``len(tpl) / n`` (a window on), ``continue`` to ``break`` after
    the energy rejection (the rest of the stream unsearched)."""
    import dsp.burst

    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return energy_match(*args, **kwargs)

    monkeypatch.setattr(dsp.burst, "energy_match", counting)
    starts, z, nv, truth = _cut_stream(0, 30.0, left=100)
    rx = _Rx(starts, z, nv, truth=truth)
    p = _packets(rx.search())
    assert [q.truth_index for q in p] == [1, 2, 3] and all(q.crc_ok for q in p)
    assert len(calls) <= 8 + 2 * 3


# session 13 (docs/MUTATION.md): the three mutants session 11 left

TAIL_END = 435  # the window at which packet 0 (cut: its last 29 symbols in the stream) ends
TAIL_LANDING = 421  # where the search lands after rejecting its data (pilot run; asserted)
TAIL_SNR = 27.0  # |g|**2 / nv in each band (14.3 dB a window): see the first test below


def _tail_stream():
    """A noise-free stream joined inside packet 0 (``_packet(1)``, 29 of its symbols left, ending on
    window ``TAIL_END``) and packet 1 (``_packet(7)``) an idle time (1125 windows) after it, at
    ``|g|**2 / nv`` = ``TAIL_SNR`` in both bands; ``(starts, z, nv)``."""
    s0 = _packet(1)
    t1 = (TAIL_END + 1125) * N
    packets = [(TAIL_END * N - s0.size * PERIOD, s0), (t1, _packet(7))]
    starts, z = _samples(TAIL_END + 1125 + 1877 + 20, packets, np.sqrt(TAIL_SNR) * np.array([1.0, 1.0j]))
    return starts, z, np.array([1.0, 1.0])


def test_data_that_only_the_fine_start_s_energy_test_rejects_is_data(monkeypatch):
    """The fine timing's energy test (``_decode``, before demodulating) rejects data that the
    search's energy test at the coarse window let through: the candidate is "data", nothing of it
    reaches the output, and the search goes on to the next packet.

    The stream (``_tail_stream``): the search meets packet 0's data (high SNR: the coarse energy
    test rejects it), moves a template on and lands on window ``TAIL_LANDING`` = ``TAIL_END`` - 14,
    where the template's first 14 windows hold packet 0's last symbol and the rest is idle: the
    statistic is ``2 |g|**2 / nv 14**2 / 195`` = 54 > 30.  The energy test decides only where the
    tag's energy under the wave reaches the noise's; with noise-free samples and ``nv`` told, that
    is ``sum_b (|g_b|**2 on - nv_b w.w) >= sum_b nv_b w.w``, ``27 on >= 2 * 195``, ``on >= 14.4``
    windows of tag energy under the wave.  The coarse template has 14 (378 < 390: no decision, it
    passes); the fine timing's best start is a window earlier (the grid's end: the whole symbol
    under the wave, statistic 62 against 54), 15 windows (405 >= 390: a decision), and the shape
    is not the preamble's, ``(27 * 15**2 - 195) / ((27 * 15 - 195) 195)`` = 0.14 < 0.5: "data".
    The recorded energy tests show it: the coarse test passing, the decoder's (on the fine span,
    200 windows) failing.  Packet 1 is then found, CRC right, and the output holds it and its
    epoch only.

    Kills: ``return "XXdataXX"`` at the fine-timing energy test (the string, neither "data" nor
    "yield" nor a tuple, is extended into the output character by character, and the search
    skips a packet's span: packet 1, an idle time later, is lost)."""
    import dsp.burst

    calls = []

    def recording(z, *args, **kwargs):
        ok = energy_match(z, *args, **kwargs)
        calls.append((z.shape[1], ok))
        return ok

    monkeypatch.setattr(dsp.burst, "energy_match", recording)
    starts, z, nv = _tail_stream()
    rx = _Rx(starts, z, nv)
    out = rx.search()
    assert all(isinstance(r, PacketResult | SimpleNamespace) for r in out) and len(out) == 2
    (p,) = _packets(out)
    assert p.crc_ok and np.array_equal(p.bits, ((1 - _packet(7)) / 2).astype(np.uint8))
    assert abs(p.start_sample - (TAIL_END + 1125) * N) <= STEP
    assert rx.decoded[0] == (float(starts[TAIL_LANDING]), "data")
    # the data rejected first by the coarse test, then the landing: coarse passes, fine fails
    assert calls[:3] == [(196, False), (196, True), (200, False)]


def test_after_data_the_search_resumes_a_window_after_the_first_crossing():
    """After "data" the search resumes one window after the statistic's first crossing (the data
    candidate is not a preamble; the next may start a window on).  In ``_tail_stream`` the search
    lands on window ``TAIL_LANDING`` (``k``), whose statistic crosses the threshold (54, see the
    test above), so the first crossing is ``k`` itself and, the candidate being "data", the next
    candidate is searched from ``k + 1``: its statistic (13 windows of the symbol,
    ``2 * 27 * 13**2 / 195`` = 47) crosses, and over the next 226 windows the statistic only falls
    (the template leaves the symbol; packet 1 is 1125 windows on), so the next candidate decoded
    is ``k + 1``.  Fed as a stream whose first search may start candidates up to window
    ``2524 - 1877 - 226`` = ``k`` (``last``), the landing's crossing is the only one in the range
    searched: the search must not fail there, and finds what the whole search finds.

    Kills: after "data", ``int(starts[i0 + hits[1]]) + n`` (the second crossing: the next
    candidate ``k + 2``; with one crossing in range, an IndexError)."""
    starts, z, nv = _tail_stream()
    streamed = _Rx(starts, z, nv)
    p = _packets(streamed.search(chunk=TAIL_LANDING + 1877 + 226))
    rx = _Rx(starts, z, nv)
    whole = _packets(rx.search())
    assert [(q.start_sample, q.detection) for q in p] == [(q.start_sample, q.detection) for q in whole]
    assert len(whole) == 1 and whole[0].crc_ok
    assert rx.decoded[0] == (float(starts[TAIL_LANDING]), "data")
    assert rx.decoded[1][0] == float(starts[TAIL_LANDING + 1])
    assert streamed.decoded == rx.decoded


def test_a_yield_to_a_preamble_within_a_template_after_the_candidate_ends():
    """After "yield" the search resumes at ``max(k + 1, stronger - len(tpl))``: past the yielding
    candidate ``k``, and no later than a template before the stronger preamble.  When that
    preamble lies within a template after ``k`` the first term decides; the search must then
    terminate and decode the stronger preamble's packet next.

    One tag cannot make this case: ``k`` is the statistic's maximum over the 226 windows after
    its first crossing, so the stronger preamble lies beyond them, at least 31 windows of
    crossing before ``k`` and more than 226 windows before the preamble; a template there needs
    the tag on within the 16 symbols before the preamble, which its idle test then rejects
    ("inside").  So two tags: tag A sends 3 data symbols and then the code with its first bit
    flipped (squared correlation ``(11 / 13)**2`` = 0.72 of a preamble's, above the energy and gain
    tests' 0.5) on windows 40-234, tag B a packet on window 235 = 40 + 195, its gain in quadrature
    with A's (B's idle test, coherent with B's gain, sees none of A's power), both
    ``|g|**2 / nv`` = 27, noise-free.  The stream starts on A's data (the first crossing within
    its first windows), the candidate is A's code at ``k`` = 40 (no idle test: the stream's start
    is within 4 symbols), its CRC fails, and B's preamble has ``(13 / 11)**2`` = 1.40 > 1.25 times
    its statistic at ``k + 195``: "yield", resume at ``k + 1`` (``235 - 196`` = 39 is less).  The
    next candidate decoded is B's packet, CRC and bits right; nothing else is decoded or output,
    whole or fed 300 windows at a time.

    The mutant ``max(k - 1, ...)`` (resume at 39 here) survives this, and is harmless: from
    ``k - 1`` the first crossing is at most ``k`` and the range searched for the maximum, 226
    windows from it, holds the stronger preamble (at most ``k + 196``), whose statistic exceeds
    ``k``'s and ``k - 1``'s (``k`` was the maximum of a range holding ``k - 1``): the same packet
    is decoded next, no loop (docs/MUTATION.md, session 13)."""
    rng = np.random.default_rng(0)
    code = PRE.copy()
    code[0] *= -1
    a = np.r_[rng.choice([-1.0, 1.0], 3), code]
    k, pre_b = 40, 40 + 195
    s = _packet(50)
    g = np.sqrt(27.0) * np.array([1.0, 1.0j])
    m = pre_b + 1877 + 20
    starts, z_a = _samples(m, [(k * N - 3 * PERIOD, a)], 1j * g)
    _, z_b = _samples(m, [(pre_b * N, s)], g)
    for chunk in (None, 300):
        rx = _Rx(starts, z_a + z_b, [1.0, 1.0])
        out = rx.search(chunk=chunk)
        assert [(d / N, r) for d, r in rx.decoded] == [(k, "yield"), (pre_b, "packet")], chunk
        assert len(out) == 2
        (p,) = _packets(out)
        assert p.crc_ok and np.array_equal(p.bits, ((1 - s) / 2).astype(np.uint8))
        assert abs(p.start_sample - pre_b * N) <= STEP
