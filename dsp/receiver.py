"""The streaming receiver: chunks ``[channel, sample]`` in, typed results out.

Work is done in fixed segments of ``segment_symbols`` OFDM windows on a window
grid anchored by the central band's timing, so how the input is chunked never
changes a decision or an estimate.  Per window and band the heavy work is one
product with a ``[N, 2]`` projection matrix (tag sample and noise probe); per
epoch, one weighted sum of windows and one FFT per band (SYSTEM.md section 4).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from dsp.acquisition import SubspaceAcquirer, TapSpace, tag_offset_hz
from dsp.alignment import LevelAlignment, PolynomialAlignment
from dsp.bands import BANDS, SIDE_BANDS
from dsp.burst import IDLE_SYMBOLS, BurstSearch
from dsp.chunks import is_pairs
from dsp.errors import BackscatterError
from dsp.kernel_alignment import KernelAlignment
from dsp.look_back import LookBack
from dsp.packet import bits_to_symbols, preamble_bits
from dsp.phasor import cis, cis32
from dsp.receiver_config import ReceiverConfig
from dsp.receiver_epochs import EpochMaths
from dsp.receiver_startup import TimingStartup
from dsp.references import guard_probe, ramp, symbol_from_cfr
from dsp.results import BlockStats, GapEvent, PacketResult, RangingEpoch
from dsp.tracking import DelayBasis, TimingModel
from dsp.waveform import WaveformConfig
from dsp.windows import DirectBuffer, WindowBlock, join_blocks, make_buffer

Result = PacketResult | RangingEpoch | BlockStats | GapEvent


class ReceiverError(BackscatterError, ValueError):
    """The receiver cannot work on this input (bands, rates); the message says why."""


@dataclass
class _Segment:
    """Consecutive windows (a :class:`~dsp.windows.WindowBlock`) and their tag samples."""

    starts: np.ndarray  # [window] continuous working-rate index of each window start
    block: WindowBlock  # the windows, [band, window, N] (views or implicit)
    z: np.ndarray  # [band, window] tag samples (central: reference projection); nan until acquired
    ph: np.ndarray  # [band, window] nominal CFO phase (cycles) removed from the side bands' z
    f: np.ndarray | None = None  # [window] fractional delay (samples) of the reference in each window
    nom0: int = 0  # nominal (drift-free) grid position of the first window

    def __post_init__(self) -> None:
        if self.f is None:
            self.f = np.zeros(self.starts.size)

    def matmul(self, row: int, mat: np.ndarray) -> np.ndarray:
        return self.block.matmul(row, mat)

    def weighted_sum(self, row: int, lo: int, hi: int, w: np.ndarray) -> np.ndarray:
        return self.block.weighted_sum(row, lo, hi, w)


class Receiver(BurstSearch, EpochMaths, TimingStartup):
    """Stateful bistatic backscatter receiver for one capture or stream.

    ``bands`` lists the channel order of the input (``central`` required, plus
    ``lower`` and/or ``upper``), sampled at ``capture_rate_hz`` (default: the profile's
    ``wf.capture_rate_hz``, so an X410 profile expects 62.5 MS/s input; until session 7 the
    default was the working rate, which read such input as garbage without a word).
    ``truth_packets`` (start samples, bits) lets
    packets report their bit errors.  ``calibration`` maps band to a circuitry
    response ``[subcarrier]`` that CFRs are divided by, ``d_cal_m`` side band to the
    calibrated circuitry distance of eq. (77).
    """

    def __init__(
        self,
        wf: WaveformConfig,
        bands: list[str],
        capture_rate_hz: float | None = None,
        config: ReceiverConfig | None = None,
        calibration: dict[str, np.ndarray] | None = None,
        truth_packets: tuple[np.ndarray, np.ndarray] | None = None,
        d_cal_m: dict[str, float] | None = None,
    ):
        if "central" not in bands:
            raise ReceiverError(f"no central band among the channels {bands}: it is the timing reference")
        sides = [b for b in bands if b in SIDE_BANDS]
        if not sides:
            raise ReceiverError(f"no side band (lower/upper) among the channels {bands}")
        if len(set(bands)) != len(bands) or any(b not in BANDS for b in bands):
            raise ReceiverError(f"channels must be distinct bands central/lower/upper, got {bands}")
        self.wf = wf
        self.cfg = config or ReceiverConfig()
        self.bands = list(bands)
        self.sides = sides
        self.c0 = self.bands.index("central")
        self.calibration = calibration
        self.d_cal_m = d_cal_m
        # True: epochs come out with their CFRs but the ranging methods not yet run (``job`` set;
        # dsp.epoch.range_methods): the streaming worker runs them in another process
        self.defer_ranging = False
        self.truth_packets = truth_packets
        self.fs = wf.working_rate_hz
        self.n = wf.fft_size
        rate = capture_rate_hz or wf.capture_rate_hz
        up = down = 1
        if rate != wf.working_rate_hz:
            try:
                ratio = wf.replace(capture_rate_hz=rate).resample_ratio
            except ValueError as exc:
                raise ReceiverError(f"capture rate {rate} Hz cannot be resampled: {exc}") from None
            up, down = ratio.numerator, ratio.denominator
        self._buf = make_buffer(self.n, up, down)
        self._next_nom: int | None = None  # nominal (drift-free) grid position of the next window
        self._basis = DelayBasis(wf, self.cfg.delay_poly_degree)
        self._align: LevelAlignment | KernelAlignment | PolynomialAlignment
        if isinstance(self._buf, DirectBuffer):
            self._align = LevelAlignment(wf, self.cfg.delay_levels)
        elif self.cfg.resampled_alignment == "kernel":
            self._align = KernelAlignment(wf, self._buf, self.cfg.kernel_levels)
        else:
            self._align = PolynomialAlignment(self._basis)
        self._timing = TimingModel()
        self._tied = True  # the sample clock follows the LO: drift = CFO / fc (checked at start-up)
        self._curv = 0.0  # central reference's delay curvature (dsp.tracking.DelayBasis.curvature)
        self.reference_index: int | None = None  # window start whose content defines the references
        self._history: list[_Segment] = []
        self._search_from: int | None = None  # continuous index: packets start at or after it
        self._epoch_from: int | None = None
        lo, hi = self.cfg.tag_delay_window
        guard = self.cfg.timing_guard_samples
        self._space = TapSpace(wf, guard + lo, hi - lo)
        self.cfo_hz: dict[str, float | None] = dict.fromkeys(self.bands)
        self.noise_var: dict[str, float | None] = dict.fromkeys(self.bands)
        self._ref: dict[str, np.ndarray | None] = dict.fromkeys(self.bands)
        self._proj: dict[str, object] = dict.fromkeys(self.bands)  # columns of self._align
        self._acq: dict[str, SubspaceAcquirer] = {}
        self._refreshes: dict[str, int] = {}  # side band -> reference refreshes since acquisition
        # side band -> the tap features acquisition kept: decodes the packets whose raw windows
        # were dropped before the band was acquired (_reproject), until those windows are trimmed
        self._lookback: dict[str, LookBack] = {}
        # side bands: the nominal CFO phase is continuous across CFO updates; it is
        # anchor_phase + cfo * (index - anchor_index) / fs (see _nominal_phase, _set_cfo)
        self._anchor: dict[str, tuple[int, float]] = {b: (0, 0.0) for b in self.bands}
        self._lag0 = 0j
        self._last_z0: complex | None = None
        self._preamble = bits_to_symbols(preamble_bits(wf))
        probe = guard_probe(wf, 0.0)
        self._guard_energy = float(np.vdot(probe, probe).real)

    # ----- public API -----------------------------------------------------
    @property
    def acquired(self) -> dict[str, bool]:
        return {b: self._ref[b] is not None for b in self.bands}

    def push(self, iq: np.ndarray, samples_lost_before: int = 0) -> list[Result]:
        """Feed ``iq`` at the capture rate; return the results it completes.

        ``iq`` is complex ``[channel, sample]`` or, as a radio or a ``ci16_le`` capture delivers
        it, int16 I/Q pairs ``[channel, sample, 2]`` (32767 = 1.0): those are read in place, with
        no conversion (:mod:`dsp.direct_windows`), and give the results of their complex64
        conversion to float32 rounding.  The receiver keeps views of recent input: do not
        overwrite it after the call.  ``samples_lost_before`` (capture-rate samples) marks a gap
        just before ``iq``.
        """
        pairs = is_pairs(iq) and iq.ndim == 3
        if not (iq.ndim == 2 or pairs) or iq.shape[0] != len(self.bands):
            raise ReceiverError(
                f"expected complex [channel={len(self.bands)}, sample] or int16 [channel={len(self.bands)}, "
                f"sample, 2] input, got {iq.dtype} shape {iq.shape}"
            )
        out: list[Result] = []
        if samples_lost_before:
            out.extend(self._gap(samples_lost_before))
        self._buf.push(iq)
        out.extend(self._drain(final=False))
        return out

    def flush(self) -> list[Result]:
        """Process what is left at the end of the input."""
        return self._drain(final=True)

    # ----- buffering and timing -----------------------------------------
    def _gap(self, lost_capture: int) -> list[Result]:
        # finish what arrived before the gap: the last windows and packets that ended in them
        out = self._drain(final=True)
        lost = self._buf.gap(lost_capture)
        self._next_nom = None
        self._history.clear()
        self._search_from = None
        self._epoch_from = None
        self._last_z0 = None
        for b in self.sides:  # acquisition needs contiguous windows: start again
            if self._ref[b] is None:
                self._acq.pop(b, None)
        return [*out, GapEvent(self._buf.first_index(), lost)]

    def _drain(self, final: bool) -> list[Result]:
        out: list[Result] = []
        if self._next_nom is None and not self._start_timing():
            return out
        while (plan := self._plan(self.cfg.segment_symbols, partial=False)) is not None:
            out.extend(self._segment(*plan))
        if final and (plan := self._plan(self.cfg.segment_symbols, partial=True)) is not None:
            out.extend(self._segment(*plan))  # the end of the input (or of a run before a gap)
        g = float(self._timing.at(self._next_nom)) if self.cfg.timing_tracking else 0.0
        self._buf.drop_before(self._next_nom + int(np.floor(g)) - 2)
        if final:
            out.extend(
                self._search_packets(final=True) if self.cfg.tag_mode == "burst" else self._cw(final=True)
            )
        return out

    def _plan(self, count: int, partial: bool) -> tuple[np.ndarray, WindowBlock, np.ndarray, int] | None:
        """The next ``count`` windows on the drifting grid: starts, block, fractional delays.

        Window ``m`` starts at ``nominal_m + round(g_m)`` and holds the reference delayed by
        ``g_m - round(g_m)`` (``g`` from the timing model).  With ``partial``, as many as fit.
        """
        n, buf = self.n, self._buf
        nom = self._next_nom + n * np.arange(count, dtype=np.int64)
        g = self._timing.at(nom) if self.cfg.timing_tracking else np.zeros(count)
        k = np.rint(g).astype(np.int64)
        starts = nom + k
        if buf.windows_available(int(starts[-1])) >= 1:
            m = count
        elif partial:
            fits = np.array([buf.windows_available(int(s)) >= 1 for s in starts])
            m = int(np.argmin(fits)) if not fits.all() else count
        else:
            return None
        if m == 0:
            return None
        starts, k = starts[:m], k[:m]
        cuts = [0, *(np.flatnonzero(np.diff(k)) + 1).tolist(), m]
        parts = [buf.block(int(starts[a]), b - a) for a, b in itertools.pairwise(cuts)]
        block = join_blocks(parts)
        nom0 = int(nom[0])
        self._next_nom = int(nom[m - 1]) + n
        return starts, block, g[:m] - k, nom0

    # ----- per segment ---------------------------------------------------
    def _segment(self, starts: np.ndarray, block: WindowBlock, f: np.ndarray, nom0: int) -> list[Result]:
        fs = self.fs
        seg = _Segment(
            starts,
            block,
            np.full((len(self.bands), starts.size), np.nan + 0j, np.complex64),
            np.zeros((len(self.bands), starts.size)),
            f,
            nom0,
        )
        self._central(seg)
        self._history.append(seg)
        for b in self.sides:
            i = self.bands.index(b)
            if self._ref[b] is not None:
                seg.z[i] = self._project(b, seg)
                continue
            self._acquire_step(b, seg)
        for b in self.sides:  # acquired in this segment: project every window still in the history
            if self._ref[b] is not None and np.isnan(seg.z[self.bands.index(b)]).any():
                self._reproject(b)
        out: list[Result] = [
            BlockStats(
                time_s=starts[0] / fs,
                symbols=starts.size,
                timing_offset=int(starts[0] % self.n),
                cfo_hz={b: float(v) for b, v in self.cfo_hz.items() if v is not None},
                noise_var={b: float(v) for b, v in self.noise_var.items() if v is not None},
                acquired=self.acquired,
                **self._timing_report(),
            )
        ]
        if any(self._ref[b] is not None for b in self.sides):
            out.extend(self._search_packets(final=False) if self.cfg.tag_mode == "burst" else self._cw(False))
        self._trim()
        return out

    def _update_noise(self, band: str, probe: np.ndarray) -> None:
        nv = float(np.mean(np.abs(probe) ** 2) / self._guard_energy)
        old = self.noise_var[band]
        self.noise_var[band] = nv if old is None else 0.8 * old + 0.2 * nv

    def _central(self, seg: _Segment) -> None:
        fs, n = self.fs, self.n
        lag_ref = self._lag0
        curv = self._curv if self.cfg.timing_tracking else None
        zz, probe, err = self._align.project(seg.block, self.c0, self._proj["central"], seg.f, curv)
        lag = np.vdot(zz[:-1], zz[1:])
        if self._last_z0 is not None:
            lag += np.conj(self._last_z0) * zz[0]
        self._last_z0 = complex(zz[-1])
        self._lag0 = self.cfg.cfo_forget * lag_ref + lag
        frac = float(np.angle(self._lag0)) * fs / (2 * np.pi * n)
        spacing = fs / n  # the lag products see the CFO modulo one subcarrier: keep the whole part
        self.cfo_hz["central"] = frac + spacing * round((self.cfo_hz["central"] - frac) / spacing)
        seg.z[self.c0] = zz
        self._update_noise("central", probe)
        if err is not None:
            mid = seg.f.size // 2
            tm = self._timing
            tm.move_anchor(seg.nom0 + mid * n)
            if self._tied:  # the shared-reference prior follows the CFO estimate
                tm.prior_rate = -self.cfo_hz["central"] / self.wf.carrier_freq_hz
            tm.update(
                seg.nom0 + mid * n, err, seg.f.size * n, self.cfg.timing_loop_gain, self.cfg.timing_rate_gain
            )

    def _timing_report(self) -> dict:
        tm = self._timing
        cfo = self.cfo_hz["central"]
        if not self.cfg.timing_tracking or cfo is None:
            return {}
        measured = tm.measured_rate(int(0.2 * self.fs))
        return {
            "timing_drift_ppm": cfo / self.wf.carrier_freq_hz * 1e6,
            "timing_drift_measured_ppm": None if measured is None else -measured * 1e6,
            "timing_error_samples": tm.last_error,
            "timing_locked": tm.last_error is not None and abs(tm.last_error) < 0.1,
        }

    def _project(self, band: str, seg: _Segment) -> np.ndarray:
        """Tag samples ``[window]`` with the band's nominal CFO phase removed (and stored in
        ``seg.ph``); updates the noise."""
        row = self.bands.index(band)
        z, probe, _ = self._align.project(seg.block, row, self._proj[band], seg.f)
        self._update_noise(band, probe)
        seg.ph[row] = self._nominal_phase(band, seg.starts)
        return (z * cis32(-2 * np.pi * seg.ph[row])).astype(np.complex64, copy=False)  # ph: cycles in [0, 1)

    def _reproject(self, band: str) -> None:
        """Project the band's history windows on its current reference: the raw ones as they
        arrive, the light ones through the look-back features (nan where none are kept)."""
        row = self.bands.index(band)
        lb = self._lookback.get(band)
        cols = None if lb is None else lb.columns(self._ref[band], self.cfo_hz[band])
        for s in self._history:
            if s.block is not None:
                s.z[row] = self._project(band, s)
                continue
            s.ph[row] = self._nominal_phase(band, s.starts)
            s.z[row] = np.nan
            if cols is not None:
                s.z[row] = lb.tag_samples(s.starts, s.f, cols) * cis(-2 * np.pi * s.ph[row])

    def _nominal_phase(self, band: str, index: np.ndarray) -> np.ndarray:
        """Nominal CFO phase (cycles, mod 1) of a side band at continuous working-rate ``index``."""
        at, phase = self._anchor[band]
        return np.mod(phase + self.cfo_hz[band] * (index - at) / self.fs, 1.0)

    def _set_cfo(self, band: str, cfo_hz: float) -> None:
        """Change a side band's CFO keeping its nominal phase continuous at the newest window.

        Referencing the phase to sample 0 instead (``cfo * index / fs``) would make every small
        correction jump the phase by ``2 pi * delta_cfo * t``: after minutes of stream, enough to
        flip the tail of a packet whose windows straddle the correction.
        """
        at = int(self._history[-1].starts[-1]) if self._history else self._anchor[band][0]
        self._anchor[band] = (at, float(self._nominal_phase(band, np.asarray(at))))
        self.cfo_hz[band] = cfo_hz

    def _install(self, band: str, ref: np.ndarray) -> None:
        """Use ``ref`` ``[N]`` as the band's reference: its projection columns for every
        fractional delay and a noise probe (dsp/alignment.py), at the band's current CFO."""
        cfo = self.cfo_hz[band]
        self._ref[band] = ref.astype(np.complex64)
        probe = guard_probe(self.wf, cfo)
        self._proj[band] = self._align.install(self._ref[band], cfo, probe, slope=band == "central")
        if band == "central":
            self._curv = self._basis.curvature(self._ref[band], cfo)

    def seed_reference(self, band: str, cfr: np.ndarray, cfo_hz: float) -> None:
        """Install a side band's reference from a known CFR ``[subcarrier]`` and CFO, skipping
        blind acquisition.  ``cfr`` is the band as seen in the window starting at
        ``reference_index`` (set once the timing is acquired), including its amplitude."""
        if self.reference_index is None:
            raise ReceiverError("seed_reference: the receiver has no timing yet")
        if band not in self.sides:
            raise ReceiverError(f"seed_reference: {band!r} is not one of the side bands {self.sides}")
        self.cfo_hz[band] = float(cfo_hz)
        self._install(band, symbol_from_cfr(self.wf, cfr, cfo_hz))
        self._refreshes[band] = 1 << 30  # known: refreshed as a converged reference
        self._acq.pop(band, None)

    # ----- acquisition -----------------------------------------------------
    def _acquire_step(self, band: str, seg: _Segment) -> None:
        nu0 = self.cfo_hz["central"] or 0.0
        acq = self._acq.setdefault(band, SubspaceAcquirer(self._space, self.cfg.acquisition_margin))
        # tap features NOT aligned to the windows' fractional delays: a polynomial alignment is
        # not unitary, so it colours the noise and the Marchenko-Pastur test then declares false
        # spikes (tried: at -36 dB it "acquired" noise after 960 windows); the |f| <= 1/2
        # spread costs the spike about 0.8 dB instead (1 - E[f**2] S2)
        features = seg.matmul(self.bands.index(band), self._space.feature_matrix(np.conj(ramp(self.wf, nu0))))
        acq.add(features, seg.starts)
        pending = [b for b in self.sides if self._ref[b] is None]
        if band != pending[-1] or acq.count < self.cfg.acquisition_min_symbols:
            return  # decide once per segment, after every side band has added its features
        spikes = {b: self._acq[b].spike() for b in pending if b in self._acq}
        ready = {b: v for b, (ratio, edge, v) in spikes.items() if ratio > edge}  # b -> eigenvector
        timed_out = acq.count >= self.cfg.acquisition_max_symbols
        if len(ready) < len(pending) and not (ready and timed_out):
            if timed_out:
                for b in pending:
                    self._acq.pop(b, None)
            return
        z = {}
        for b, v in ready.items():
            st = np.concatenate(self._acq[b].starts)
            z[b] = self._acq[b].tag_samples(v) * np.exp(-2j * np.pi * np.mod(nu0 * st / self.fs, 1.0))
        eps_fsh = tag_offset_hz(z, self.wf.subcarrier_spacing_hz, modulated=self.cfg.tag_mode == "burst")
        for b, v in ready.items():
            self.cfo_hz[b] = nu0 + (eps_fsh if b == "upper" else -eps_fsh)
            cfr = self._space.cfr_from_taps(v, self.cfo_hz[b] - nu0)  # features: nu0 removed
            self._install(b, symbol_from_cfr(self.wf, cfr, self.cfo_hz[b]))
            self._refreshes[b] = 0
            acq = self._acq.pop(b)
            self._lookback[b] = LookBack(
                self._space, self._basis, np.concatenate(acq.starts), np.concatenate(acq.features), nu0
            )

    # ----- packets (burst mode) ------------------------------------------
    def _tag_symbol_samples(self) -> float:
        wf = self.wf
        nu0 = self.cfo_hz["central"] or 0.0
        eps = [
            (self.cfo_hz[b] - nu0) / wf.tag_shift_hz * (1 if b == "upper" else -1)
            for b in self.sides
            if self._ref[b] is not None
        ]
        return self.fs / (wf.tag_symbol_rate_baud * (1 + float(np.mean(eps)) if eps else 1.0))

    def _stacked(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        rows = [self.bands.index(b) for b in self.sides if self._ref[b] is not None]
        starts = np.concatenate([s.starts for s in self._history])
        z = np.concatenate([s.z[rows] for s in self._history], axis=1).astype(complex)
        return starts, z, rows

    def _fractions(self, lo: int, hi: int) -> np.ndarray:
        """Fractional delays ``[window]`` of history windows ``lo..hi``."""
        return np.concatenate([s.f for s in self._history])[lo:hi]

    def _phases(self, rows: list[int], lo: int, hi: int) -> np.ndarray:
        """Stored nominal phases ``[row, window]`` of history windows ``lo..hi``."""
        return np.concatenate([s.ph[rows] for s in self._history], axis=1)[:, lo:hi]

    def _z_noise(self, rows: list[int]) -> np.ndarray:
        out = []
        for r in rows:
            b = self.bands[r]
            out.append(self.noise_var[b] / np.vdot(self._ref[b], self._ref[b]).real)
        return np.asarray(out)

    def _trim(self) -> None:
        """Drop history segments no future packet or epoch can need."""
        mark = self._search_from if self.cfg.tag_mode == "burst" else self._epoch_from
        if mark is None:  # still acquiring: raw windows for about one packet (or epoch), older
            # segments light (starts, tag samples, phases: 64 bytes a window) for look-back, as
            # far back as acquisition keeps its features (acquisition_max_symbols windows)
            span = max(self.cfg.epoch_symbols, int(self.wf.packet_duration_s * self.wf.ofdm_symbol_rate_hz))
            raw = 0
            for s in reversed(self._history):
                if raw > span + 2 * self.cfg.segment_symbols:
                    s.block = None
                raw += s.starts.size
            limit = self.cfg.acquisition_max_symbols + span
            while sum(s.starts.size for s in self._history) > limit:
                self._history.pop(0)
            return
        keep_from = mark - 3 * self.n - IDLE_SYMBOLS * self._tag_symbol_samples()  # _idle_before
        while self._history and self._history[0].starts[-1] < keep_from:
            self._history.pop(0)
        if self._lookback and all(s.block is not None for s in self._history):
            self._lookback.clear()  # no window left that only the features describe
