"""Burst mode's packet search: preamble detection, the checks against data, decoding.

:class:`BurstSearch` is the part of :class:`dsp.receiver.Receiver` that finds and decodes
packets in the tag samples of its history (SYSTEM.md section 4, steps 5-6; docs/RECEIVER.md).
It reads the receiver's state (history, references, CFOs, configuration) and changes it only
through a decoded packet (its CFO correction and reference refresh).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from dsp.packet import parse_packet
from dsp.packet_checks import energy_match, gain_match, tag_idle
from dsp.phasor import cis
from dsp.results import PacketResult
from dsp.tagdemod import (
    demodulate,
    detection_statistic,
    overlap_csr,
    overlap_matrix,
    preamble_template,
    preamble_waves,
)

if TYPE_CHECKING:
    from dsp.receiver import Result

# a candidate inside the span of a CRC-failed packet whose preamble statistic is this many times
# larger displaces it: a data segment of rho**2 <= 0.8 yields to the next packet's preamble, while
# a true packet yields only to data matching the code (2.7 % of packets hold an exact 13-bit
# match) whose statistic also comes out 25 % above the preamble's own (at Eb/N0 7 dB, std 18 %)
STRONGER_PREAMBLE = 1.25
# tag symbols before a packet checked for the tag's idleness (dsp.packet_checks.tag_idle): 16 (8 ms
# of the 37.5 ms idle time) give data a statistic about 10 times the idle one at Eb/N0 7 dB
IDLE_SYMBOLS = 16


class BurstSearch:
    """Packet search and decoding over the receiver's history (a mixin of ``Receiver``)."""

    def _search_packets(self, final: bool) -> list[Result]:
        if not self._history or not any(self._ref[b] is not None for b in self.sides):
            return []
        n, wf = self.n, self.wf
        period = self._tag_symbol_samples()
        starts, z, rows = self._stacked()
        nv = self._z_noise(rows)
        tpl = self._template(period)
        pkt_windows = int(np.ceil(wf.packet_bits * period / n)) + 2
        look = int(np.ceil(2 * period / n))
        if self._search_from is None:
            self._search_from = int(starts[0])
        out: list[Result] = []
        while True:
            # the first crossing can be a partial overlap of the preamble with the packet: the
            # true start lies within one template length after it, so look that far ahead
            ahead = len(tpl) + look
            i0 = int(np.searchsorted(starts, self._search_from))
            last = len(starts) - pkt_windows - (0 if final else ahead)
            if last < i0:
                break
            # the statistic as far as a candidate up to ``last`` looks ahead (the whole rest of the
            # history is needed only once a candidate passes the energy test, below)
            stat = detection_statistic(z[:, i0 : last + ahead + len(tpl)], nv, tpl)
            hits = np.flatnonzero(stat[: last - i0 + 1] > self.cfg.detect_threshold)
            if hits.size == 0:
                self._search_from = int(starts[last]) + n
                break
            k = i0 + hits[0] + int(np.argmax(stat[hits[0] : hits[0] + ahead + 1]))
            if k + pkt_windows > len(starts):
                break
            if not energy_match(z[:, k : k + len(tpl)], nv, tpl, self.cfg.preamble_match):
                # the tag is on here and this is not a preamble: the search is inside a packet,
                # whose successor starts at least an idle time (75 symbols) later, so one
                # template (13 symbols) on is safe; one window on, as before, made a search that
                # starts inside a packet at high SNR test some 1,500 candidates (each with its
                # fine timing): the live worker fell behind, dropped samples, and started inside
                # packets again
                self._search_from = int(starts[k]) + len(tpl) * n
                continue
            stat = detection_statistic(z[:, i0:], nv, tpl)  # (the same values, and the rest)
            stronger = self._stronger_preamble(stat, k - i0, pkt_windows - 2)
            result = self._decode(starts, z, rows, nv, k, period, yield_on_crc_error=stronger is not None)
            if result == "data":
                self._search_from = int(starts[i0 + hits[0]]) + n  # data, not a preamble: move on
                continue
            if result == "yield":  # data of a packet whose preamble lies ahead: resume before it
                self._search_from = int(starts[max(k + 1, i0 + stronger - len(tpl))])
                continue
            if isinstance(result, tuple):  # inside a packet: the next starts an idle time later
                self._search_from = max(int(starts[k]) + n, int(result[1] + self._idle_samples(period)))
                continue
            out.extend(result)
            self._search_from = int(starts[k]) + (pkt_windows - 2) * n
            if len(result) == 1 and self._lookback:  # look-back: the references were refined
                _, z, rows = self._stacked()
                nv = self._z_noise(rows)
        return out

    def _template(self, period: float) -> np.ndarray:
        """The preamble template for tag symbols of ``period`` samples, kept until the period
        changes (a decoded packet's CFO update): searched every segment, made once a packet."""
        cached = getattr(self, "_template_cache", None)
        if cached is None or cached[0] != period:
            tpl = preamble_template(self._preamble, period, self.n)
            tpl.setflags(write=False)
            cached = self._template_cache = (period, tpl)
        return cached[1]

    @staticmethod
    def _stronger_preamble(stat: np.ndarray, k: int, span: int) -> int | None:
        """The first candidate within ``span`` windows after ``k`` (indices into ``stat``) whose
        statistic exceeds ``STRONGER_PREAMBLE`` times ``stat[k]``, or None.

        One tag's packets do not overlap, so a stronger preamble inside the span of a packet
        found at ``k`` means ``k`` was data of an earlier packet that correlated with the code
        (``rho**2`` of at most ``1 / STRONGER_PREAMBLE`` of the preamble's statistic).
        """
        later = stat[k + 1 : k + 1 + span]
        above = np.flatnonzero(later > STRONGER_PREAMBLE * stat[k])
        return None if above.size == 0 else k + 1 + int(above[0])

    def _decode(
        self, starts, z, rows, nv, k, period, yield_on_crc_error: bool = False
    ) -> list[Result] | Literal["data", "yield"] | tuple[str, float]:
        """The packet whose preamble the statistic found near window ``k``: its result and
        ranging epoch; "data" when the correlation there is not a preamble's (data that merely
        correlates with the code, dsp/packet_checks.py); ``("inside", t0)`` when the tag was
        active before the candidate's start ``t0`` (it lies inside a packet); "yield" when its
        CRC fails and ``yield_on_crc_error`` (a stronger preamble lies inside its span).  Only a
        packet returned changes the receiver's state (CFO, references)."""
        wf, n = self.wf, self.n
        pkt = wf.packet_bits
        lo = max(0, k - 2)
        hi = min(len(starts), k + int(np.ceil(pkt * period / n)) + 3)
        st = starts[lo:hi]
        zz = z[:, lo:hi]
        # fine timing: the preamble statistic on a sub-window grid around the coarse start
        p_end = k - lo + int(np.ceil(len(self._preamble) * period / n)) + 3
        st_p, zz_p = st[:p_end], zz[:, :p_end]
        cand = starts[k] + n * np.linspace(-1, 1, 33)
        waves = preamble_waves(cand, period, self._preamble, st_p, n)  # [candidate, window]
        stat_c = np.sum(np.abs(zz_p @ waves.T) ** 2 / (nv[:, None] * np.sum(waves**2, axis=1)), axis=0)
        best_i = int(np.argmax(stat_c))
        best, t0 = float(stat_c[best_i]), float(cand[best_i])
        if not energy_match(zz_p, nv, waves[best_i], self.cfg.preamble_match):
            # before demodulating: data the coarse energy test let through (its span and the fine
            # start's fall either side of its decision level; most data stops there, a template at
            # a time)
            return "data"
        o = overlap_csr(t0, period, pkt, st, n)  # [tag_symbol, window], sparse
        times = (st + n / 2) / self.fs
        dem = demodulate(zz, nv, o, self._preamble, times, self.cfg.phase_track_max_hz)
        if not gain_match(zz_p, nv, waves[best_i], dem.gains, self.cfg.preamble_match):
            return "data"
        if not self._idle_before(starts, z, nv, t0, period, dem):
            return ("inside", t0)
        bits = ((1 - dem.decisions) / 2).astype(np.uint8)
        tag_id, _, crc_ok = parse_packet(wf, bits)
        if yield_on_crc_error and not crc_ok:
            return "yield"
        ebn0 = float(10 * np.log10(max(float(np.sum(dem.snr_per_bit)), 1e-30)))
        result = PacketResult(
            t0 / self.fs, t0, tag_id, bits, crc_ok, best, ebn0, soft=dem.soft.astype(np.complex64)
        )
        if self.truth_packets is not None and len(self.truth_packets[0]):
            ts, tb = self.truth_packets
            j = int(np.argmin(np.abs(ts - t0)))
            if abs(ts[j] - t0) < period / 2:
                result.truth_index = j
                result.bit_errors = int(np.sum(tb[j] != bits))
        # ranging epoch from the same windows, weighted by the re-modulated tag waveform
        wave = dem.decisions @ o
        weights: dict[str, np.ndarray] = {}
        phases = self._phases(rows, lo, hi)
        for r, b in enumerate([self.bands[i] for i in rows]):
            g = dem.gains[r]
            weights[b] = (
                wave * cis(-2 * np.pi * (phases[r] + dem.freq_offset_hz[r] * times)) * np.conj(g) / abs(g)
            )
            self._set_cfo(b, self.cfo_hz[b] + 0.5 * dem.freq_offset_hz[r])
        if not self._windows_kept(lo, hi):  # decoded by look-back: no raw windows left to range on
            self._learn_from_features(st, self._fractions(lo, hi), weights)
            return [result]
        epoch = self._epoch(lo, hi, weights, t0 / self.fs)
        for b in weights:  # refine the side-band references with this packet's estimate
            self._refresh_reference(
                b, epoch.cfr[b] if self.calibration is None else epoch.cfr[b] * self.calibration[b]
            )
        return [result, epoch]

    def _learn_from_features(self, st: np.ndarray, f: np.ndarray, weights: dict[str, np.ndarray]) -> None:
        """Refine the side-band references from a packet decoded by look-back, through its
        windows' tap features (:meth:`dsp.look_back.LookBack.cfr`), as an epoch refines them
        after acquisition, and project the history again on them."""
        for b, w in weights.items():
            lb = self._lookback.get(b)
            cfr = None if lb is None else lb.cfr(st, f, w, self.cfo_hz[b])
            if cfr is not None:
                self._refresh_reference(b, cfr)
                self._reproject(b)

    def _idle_samples(self, period: float) -> float:
        """Working-rate samples by which the next packet's start is at least ahead of a candidate
        the idle test rejected.  The tag was on somewhere in the ``IDLE_SYMBOLS`` symbols checked
        before it (after a one-symbol guard), so the packet on then ends at most that far back
        and the next one starts an idle time after it: the idle time less those symbols, the
        guard and one more of margin (the burst period counts on the tag's clock)."""
        wf = self.wf
        idle_symbols = (wf.burst_period_s - wf.packet_duration_s) * wf.tag_symbol_rate_baud
        return max(0.0, (idle_symbols - IDLE_SYMBOLS - 2) * period)

    def _idle_before(self, starts, z, nv, t0: float, period: float, dem) -> bool:
        """Whether the tag was idle over the ``IDLE_SYMBOLS`` symbols before a packet found at
        ``t0`` (:func:`dsp.packet_checks.tag_idle`), judged on the history windows that end a
        symbol before it (a guard for the fine timing's error); True (no test) when the history
        or the idle time between packets leaves fewer than four symbols to check (it holds fewer
        than six: one guard and one of margin)."""
        wf, n = self.wf, self.n
        idle_symbols = (wf.burst_period_s - wf.packet_duration_s) * wf.tag_symbol_rate_baud
        end = t0 - period
        j = min(IDLE_SYMBOLS, int(idle_symbols) - 2, int((end - starts[0]) // period))
        if j < 4:
            return True
        lo = int(np.searchsorted(starts, end - j * period - n, side="right"))
        hi = int(np.searchsorted(starts, end - n, side="right"))  # windows that end before the guard
        st = starts[lo:hi]
        o = overlap_matrix(end - j * period, period, j, st, n)
        times = (st + n / 2) / self.fs
        return tag_idle(z[:, lo:hi], nv, o, dem.gains, dem.freq_offset_hz, times)
