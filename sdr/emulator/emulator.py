"""Software channel emulator: the simulated radio and the oracle of every test.

It produces the baseband IQ ``[channel, sample]`` of every band exactly as the
receiver would see it (SYSTEM.md section 3): the periodic illumination through
the multipath channels and circuitry (fractional delays applied per
subcarrier), the tag's BPSK and square-wave clock in the side bands, LO and
tag clock offsets, the sample-clock drift tied to the LO offset (sdr/emulator/drift.py), a
random sample offset, AWGN at a per-band SNR on the
active subcarriers and ADC quantisation.  Generation is seeded, block by
block, so any block can be reproduced on its own.

Output is at the profile's capture rate (``rate_hz``): the band-limited signal is
synthesised there directly, on a period of ``L`` samples holding ``P`` working symbols
(``L = N`` at the working rate; 6250 samples = 3 symbols at 62.5 MS/s, subcarrier ``k`` on
bin ``3k``).  The noise is white over the capture band with the density of the configured
SNR.  The truth (packet starts, sample offset, delays) stays in working-rate samples, the
receiver's index after resampling; gaps and block indices are in capture samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dsp.bands import BANDS
from dsp.packet import bits_to_symbols, build_packet
from dsp.truth import GroundTruth
from dsp.waveform import WaveformConfig
from sdr.emulator.circuitry import band_delay_s, band_response, draw_circuits
from sdr.emulator.drift import DriftingPeriodic
from sdr.emulator.geometry import draw_paths
from sdr.emulator.impairments import Impairments, held_phasors
from sdr.emulator.noise_kernel import noise_tail, stream_key
from sdr.emulator.scenario import ScenarioConfig
from sdr.emulator.tag_kernel import apply_tag

SYMBOLS_PER_BLOCK = 256
ROWS_PER_PASS = 32
"""Periods rendered and finished (noise, front end, ADC) in one pass of the kernels: 256 KiB."""


@dataclass
class Block:
    """A run of contiguous samples at the capture rate: ``iq`` ``[channel, sample]`` complex64
    (1.0 = full scale).

    ``index`` is the continuous sample index of the first sample; ``lost_before`` the
    number of samples dropped just before it (0 when contiguous with the previous block).
    """

    iq: np.ndarray
    index: int
    lost_before: int = 0


def capture_period(wf: WaveformConfig) -> tuple[int, int]:
    """``(P, L)``: the fewest working symbols ``P`` whose duration is a whole number ``L`` of
    capture samples (1 and ``N`` at the working rate; 3 and 6250 at 62.5 MS/s)."""
    ratio = wf.resample_ratio  # fs / capture rate = up / down
    up, down = ratio.numerator, ratio.denominator
    p = up // math.gcd(up, wf.fft_size * down)
    period = p * wf.fft_size * down // up
    if period > 1 << 20:
        raise ValueError(
            f"WaveformConfig.capture_rate_hz = {wf.capture_rate_hz!r}: the emulator's period would be "
            f"{period} samples ({p} symbols); choose a rate with a simpler ratio to {wf.working_rate_hz!r}"
        )
    return p, period


class Emulator:
    """Seeded emulation of one scenario.  ``truth`` holds the answer."""

    def __init__(self, wf: WaveformConfig, sc: ScenarioConfig):
        self.wf, self.sc = wf, sc
        # output at the capture rate the profile names (SYSTEM.md section 2): one synthesis
        # period of ``period`` samples holds ``symbols_per_period`` working symbols exactly
        self.rate_hz = float(wf.capture_rate_hz)
        self.symbols_per_period, self.period = capture_period(wf)
        self.periods_per_block = max(1, SYMBOLS_PER_BLOCK // self.symbols_per_period)
        self.block_samples = self.periods_per_block * self.period
        if sc.tag_id >= 2**wf.tag_id_bits:
            raise ValueError(f"scenario tag_id {sc.tag_id:#x} does not fit in {wf.tag_id_bits} bits")
        ss = np.random.SeedSequence(sc.seed)
        geo_ss, circ_ss, imp_ss, data_ss, noise_ss, hw_ss = ss.spawn(6)
        self._noise_key = int(noise_ss.generate_state(1, np.uint64)[0])
        rng = np.random.default_rng(geo_ss)
        self.paths_tx_rx, self.paths_tx_tag, self.paths_tag_rx, tag_pos = draw_paths(sc, wf, rng)
        if sc.circuitry_seed is not None:  # the radio's hardware, independent of the scenario
            circ_ss = np.random.SeedSequence([sc.circuitry_seed, 0xC1C])
        self.circuits = draw_circuits(sc, np.random.default_rng(circ_ss))
        self._draw_impairments(np.random.default_rng(imp_ss))
        self.imp = Impairments(
            wf,
            sc,
            self.rate_hz,
            self.period,
            self.block_samples,
            10 ** (sc.rms_dbfs / 20),
            np.random.default_rng(hw_ss),
            (sc.seed, 0x1A9),
        )
        self._draw_packets(np.random.default_rng(data_ss))
        self._build_bands()
        self.truth = self._make_truth(tag_pos)

    # ----- set-up --------------------------------------------------------
    def _draw_impairments(self, rng: np.random.Generator) -> None:
        sc, wf = self.sc, self.wf
        self.lo_ppm = sc.lo_ppm if sc.lo_ppm is not None else rng.uniform(-1, 1) * sc.lo_ppm_max
        self.tag_ppm = (
            sc.tag_clock_ppm if sc.tag_clock_ppm is not None else rng.uniform(-1, 1) * sc.tag_clock_ppm_max
        )
        self.n0 = sc.sample_offset if sc.sample_offset is not None else int(rng.integers(0, wf.fft_size))
        # one reference per node: the TX-RX offset also stretches the illumination (SYSTEM.md 3)
        self.sample_clock_ppm = self.lo_ppm if sc.sample_clock_tied and not sc.ideal else 0.0
        nu0 = self.lo_ppm * 1e-6 * wf.carrier_freq_hz
        eps_sh = self.tag_ppm * 1e-6 * wf.tag_shift_hz
        self.cfo_hz = {"central": nu0, "lower": nu0 - eps_sh, "upper": nu0 + eps_sh}
        self.phase_rad = {b: float(rng.uniform(0, 2 * np.pi)) for b in BANDS}
        self.first_packet_s = sc.first_packet_s if sc.first_packet_s is not None else rng.uniform(1e-3, 10e-3)

    def _draw_packets(self, rng: np.random.Generator) -> None:
        """Tag waveform as piecewise-constant segments: ``_edges`` (samples) and ``_values``."""
        wf, sc = self.wf, self.sc
        fs = wf.working_rate_hz
        self.tag_symbol_samples = fs / (wf.tag_symbol_rate_baud * (1 + self.tag_ppm * 1e-6))
        n_total = round(sc.duration_s * fs)  # working-rate samples: the receiver's index
        self.n_total = round(sc.duration_s * self.rate_hz)  # samples delivered
        if sc.mode == "cw":
            self.packet_start = np.zeros(0)
            self.packet_bits = np.zeros((0, wf.packet_bits), np.uint8)
            self._edges = np.array([-np.inf])
            self._values = np.array([1.0])
            return
        starts, bits = [], []
        t = self.first_packet_s
        while (t + wf.packet_duration_s * (1 + 1e-3)) * fs < n_total:
            starts.append(t * fs)
            payload = rng.integers(0, 2, wf.payload_bits).astype(np.uint8)
            bits.append(build_packet(wf, sc.tag_id, payload))
            t += wf.burst_period_s
        self.packet_start = np.asarray(starts, np.float64)
        self.packet_bits = np.asarray(bits, np.uint8).reshape(len(starts), wf.packet_bits)
        edges, values = [-np.inf], [0.0]
        j = np.arange(wf.packet_bits + 1)
        for s, b in zip(self.packet_start, self.packet_bits, strict=True):
            edges.extend(s + j * self.tag_symbol_samples)
            values.extend(bits_to_symbols(b))
            values.append(0.0)
        self._edges = np.asarray(edges)
        if self.imp.jitter_rms_s > 0:  # the tag clock's jitter on every symbol edge
            jit = np.random.default_rng(np.random.SeedSequence(self.imp.seed, spawn_key=(5,)))
            self._edges[1:] += jit.normal(0, self.imp.jitter_rms_s * fs, len(edges) - 1)
        self._values = np.asarray(values)

    def _build_bands(self) -> None:
        """Per band: the periodic received symbol as seen from RX sample 0, noise and scale."""
        wf, sc = self.wf, self.sc
        f = wf.active_freqs_hz
        centers = wf.band_centers_hz
        h1c = self.paths_tx_tag.cfr(f, centers["central"])
        self.cfr_prop, self.cfr_circ = {}, {}
        imp = self.imp
        # the tag's modulated reflection seen in the central band through the square wave's mean
        leak = imp.central_leak * h1c * self.paths_tag_rx.cfr(f, centers["central"])
        leak = leak * self.circuits["tag"].response(f)
        for band in sc.bands:
            if band == "central":
                h = self.paths_tx_rx.cfr(f, centers["central"])
                h = h + sc.structural_mode_gain * h1c * self.paths_tag_rx.cfr(f, centers["central"])
                if sc.mode == "cw":  # data constant: the leak is part of the static channel
                    h = h + leak
            else:
                h = h1c * self.paths_tag_rx.cfr(f, centers[band])
            self.cfr_prop[band] = h
            self.cfr_circ[band] = band_response(self.circuits, band, f)
        self._synth, self.noise_var, self.scale, self._noise_std = {}, {}, {}, {}
        n = wf.fft_size
        qlevels = 2 ** (sc.adc_bits - 1) - 1 if sc.adc_bits else 0
        for band in sc.bands:
            h = self.cfr_prop[band] * self.cfr_circ[band]
            if band != "central":  # first harmonic: 2/pi with an ideal duty cycle
                # the SNR is an ideal tag's: a duty error lowers the signal, not the noise
                p_sig = float(np.mean(np.abs(h * 2 / np.pi) ** 2))
                h = h * (imp.harmonic if band == "upper" else imp.harmonic.conjugate())
            else:
                p_sig = float(np.mean(np.abs(h) ** 2))
            snr = 10 ** (sc.snr_db[band] / 10)
            var = p_sig / snr  # per-sample noise variance at fs = per-subcarrier noise power
            # white over the capture band: the same density, rate / fs times the variance
            var_capture = var * self.rate_hz / wf.working_rate_hz
            rms = np.sqrt(p_sig * len(f) / n + var_capture)
            scale = 10 ** (sc.rms_dbfs / 20) / rms
            # r(t) = s(t (1 + delta) - n0 / fs), s one period of x (*) g: SYSTEM.md section 3
            self._synth[band] = DriftingPeriodic(
                wf.zadoff_chu * h * scale,
                np.mod(self.symbols_per_period * wf.active_subcarriers, self.period),
                f,
                self.period,
                self.rate_hz,
                self.period / np.sqrt(n),
                self.n0 / wf.working_rate_hz,
                self.sample_clock_ppm,
            )
            self.noise_var[band] = var * scale**2
            self._noise_std[band] = np.float32(np.sqrt(var_capture) * scale)
            self.scale[band] = scale
        self._qlevels = qlevels
        self._leak_synth = None
        if sc.mode == "burst" and imp.central_leak != 0:
            c = self._synth["central"]
            spec = wf.zadoff_chu * leak * self.cfr_circ["central"] * self.scale["central"]
            self._leak_synth = DriftingPeriodic(
                spec, c.bins, f, self.period, self.rate_hz, c.gain, c.delay0_s, self.sample_clock_ppm
            )

    def _make_truth(self, tag_pos: tuple[float, float] | None) -> GroundTruth:
        sc = self.sc
        return GroundTruth(
            range_true_m=self.paths_tx_tag.los_length_m + self.paths_tag_rx.los_length_m,
            tx_rx_distance_m=self.paths_tx_rx.los_length_m,
            tag_pos_m=tag_pos,
            sample_offset=int(self.n0),
            lo_ppm=float(self.lo_ppm),
            sample_clock_ppm=float(self.sample_clock_ppm),
            impairments={"ideal": sc.ideal, **self.imp.summary(self.rate_hz)},
            tag_clock_ppm=float(self.tag_ppm),
            cfo_hz={b: self.cfo_hz[b] for b in sc.bands},
            snr_db=sc.snr_db,
            phase_rad={b: self.phase_rad[b] for b in sc.bands},
            noise_var=self.noise_var,
            scale=self.scale,
            circuitry_delay_s={b: band_delay_s(self.circuits, b) for b in sc.bands},
            cfr_propagation=self.cfr_prop,
            cfr_circuitry=self.cfr_circ,
            tag_id=sc.tag_id,
            packet_start_sample=self.packet_start,
            packet_bits=self.packet_bits,
            tag_symbol_samples=self.tag_symbol_samples,
            gaps=self._gaps(),
        )

    # ----- generation ----------------------------------------------------
    def tag_wave(self, n: np.ndarray) -> np.ndarray:
        """Tag BPSK value (+1, -1, or 0 when idle) at continuous sample indices ``n``."""
        return self._values[np.searchsorted(self._edges, n, side="right") - 1]

    def generate_block(self, block: int) -> np.ndarray:
        """Continuous samples of block ``block`` (``block_samples`` at ``rate_hz``), ``[channel, sample]``.

        A block is ``periods_per_block`` synthesis periods: ``SYMBOLS_PER_BLOCK`` OFDM symbols
        at the working rate.
        """
        sc = self.sc
        n_per, n = self.periods_per_block, self.period
        start = (block * n_per + np.arange(n_per)) * n  # first sample of each period
        rate = self.rate_hz
        to_work = self.wf.working_rate_hz / rate  # tag edges are in working-rate samples
        # one SplitMix64 stream per (block, band of BANDS): sdr/emulator/noise_kernel.py
        keys = [stream_key(self._noise_key, len(BANDS) * block + i) for i in range(len(BANDS))]
        scratch = np.empty((n_per, n), np.complex64)
        out = np.empty((len(sc.bands), n_per, n), np.complex64)
        t_in = np.arange(n)
        a_start = np.ones(n_per) if sc.mode == "cw" else self.tag_wave(start * to_work)
        edge = np.zeros(n_per, bool)
        if sc.mode == "burst":  # a tag symbol edge inside a period
            edge = np.searchsorted(self._edges, start * to_work, side="right") != np.searchsorted(
                self._edges, (start + n - 1) * to_work, side="right"
            )
        imp = self.imp
        pn = imp.phase_noise(block) if imp.has_phase_noise else {}
        no_phase, no_extra = np.zeros(0, np.complex64), np.zeros(0, np.float32)
        qlevels = np.float32(self._qlevels)
        for c, band in enumerate(sc.bands):
            nu = self.cfo_hz[band]
            cyc = np.mod(nu * start / rate, 1.0)
            phasor = np.exp(1j * (imp.band_phase(band, self.phase_rad[band], start) + 2 * np.pi * cyc))
            ramp = np.exp(2j * np.pi * nu * t_in / rate)
            sideband = band != "central"
            rows = (np.where(edge, phasor, phasor * a_start) if sideband else phasor).astype(np.complex64)
            ramp = ramp.astype(np.complex64)
            synth = self._synth[band]
            plan = synth.plan(block * n_per, n_per)
            with_leak = not sideband and self._leak_synth is not None and (edge.any() or a_start.any())
            if with_leak:  # tag data leaking into the central band
                leak_rows = np.where(edge, phasor, phasor * a_start).astype(np.complex64)
                leak_plan = self._leak_synth.plan(block * n_per, n_per)
            phase = held_phasors(pn[band]) if band in pn else no_phase
            iq, key = imp.front_end[band].kernel_params(), keys[BANDS.index(band)]
            # ROWS_PER_PASS periods at a time, rendered and finished while in cache
            step = ROWS_PER_PASS
            for m0 in range(0, n_per, step):
                m1 = min(m0 + step, n_per)
                part = synth.render_rows(plan, m0, rows, ramp, out[c, m0:m1])
                leak = no_extra
                if sideband:
                    self._tag_edges(part, edge[m0:m1], start[m0:m1], to_work)
                elif with_leak:
                    extra = self._leak_synth.render_rows(leak_plan, m0, leak_rows, ramp, scratch[: m1 - m0])
                    self._tag_edges(extra, edge[m0:m1], start[m0:m1], to_work)
                    leak = extra.reshape(-1).view(np.float32)  # added by the tail's pass
                # (leak,) phase noise held for decim samples, AWGN, IQ mixer, DC, ADC: one pass
                noise_tail(
                    part.reshape(-1).view(np.float32),
                    leak,
                    key,
                    m0 * n,
                    self._noise_std[band],
                    phase[m0 * n // imp.decim :] if len(phase) else phase,
                    imp.decim,
                    iq,
                    qlevels,
                )
        return out.reshape(len(sc.bands), n_per * n)

    def _tag_edges(self, rows: np.ndarray, edge: np.ndarray, start: np.ndarray, to_work: float) -> None:
        """Periods ``rows[k]`` holding a tag symbol edge, rendered with tag 1: times the tag."""
        apply_tag(rows, np.flatnonzero(edge), start, to_work, self._edges, self._values)

    def _gaps(self) -> np.ndarray:
        """Injected drops as ``[gap, 2]``: (continuous index of first lost sample, samples lost)."""
        fs = self.rate_hz
        rows = sorted((round(t * fs), int(k)) for t, k in self.sc.drops)
        merged: list[list[int]] = []
        for s, k in rows:
            k = min(k, self.n_total - s)
            if merged and s <= merged[-1][0] + merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], s + k - merged[-1][0])
            elif k > 0:
                merged.append([s, k])
        return np.asarray(merged, np.int64).reshape(-1, 2)

    def blocks(self) -> Iterator[Block]:
        """Every sample of the scenario, in order, with the injected drops removed."""
        per = self.block_samples
        gaps = self.truth.gaps
        n_blocks = -(-self.n_total // per)
        pending_lost = 0
        for b in range(n_blocks):
            lo, hi = b * per, min((b + 1) * per, self.n_total)
            iq = self.generate_block(b)[:, : hi - lo]
            cut = lo
            for s, k in gaps:
                if s + k <= lo or s >= hi:
                    continue
                if s > cut:
                    yield Block(iq[:, cut - lo : s - lo], cut, pending_lost)
                    pending_lost = 0
                pending_lost += min(s + k, hi) - max(s, cut)
                cut = min(s + k, hi)
            if cut < hi:
                yield Block(iq[:, cut - lo :], cut, pending_lost)
                pending_lost = 0

    def generate(self) -> np.ndarray:
        """The whole capture (drops removed), ``[channel, sample]`` complex64.

        Written block by block into one array (a list of blocks and their concatenation held
        twice the capture, and the second copy cost as much as the blocks' noise)."""
        gaps = self.truth.gaps
        n = self.n_total - (int(np.sum(gaps[:, 1])) if len(gaps) else 0)
        out = np.empty((len(self.sc.bands), n), np.complex64)
        pos = 0
        for blk in self.blocks():
            k = blk.iq.shape[1]
            out[:, pos : pos + k] = blk.iq
            pos += k
        if pos != n:
            raise RuntimeError(f"the emulator's blocks gave {pos} samples, expected {n}")
        return out
