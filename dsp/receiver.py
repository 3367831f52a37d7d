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
from dsp.alignment import LevelAlignment, PolynomialAlignment, SumPart
from dsp.bands import BANDS, SIDE_BANDS
from dsp.burst import IDLE_SYMBOLS, BurstSearch
from dsp.chunks import is_pairs
from dsp.epoch import ranging_epoch
from dsp.errors import BackscatterError
from dsp.kernel_alignment import KernelAlignment
from dsp.look_back import LookBack
from dsp.packet import bits_to_symbols, preamble_bits
from dsp.phasor import cis, cis32
from dsp.receiver_config import ReceiverConfig
from dsp.references import guard_probe, ramp, symbol_from_cfr
from dsp.results import BlockStats, GapEvent, PacketResult, RangingEpoch
from dsp.tagdemod import demodulate
from dsp.timing import coarse_cfo_hz, symbol_timing
from dsp.tracking import DelayBasis, TimingModel
from dsp.waveform import WaveformConfig
from dsp.windows import DirectBuffer, WindowBlock, join_blocks, make_buffer

BOOT_WINDOWS = 32  # central windows averaged into the first reference (0.33 samples of drift at 10 ppm)
CHECK_WINDOWS = 48  # windows over which the drift is measured at start-up (0.49 samples at 10 ppm)
DRIFT_CHECK_FLOOR = 0.05e-6  # the start-up drift check never tightens below 0.05 ppm (1.5 samples/s)
STARTUP_WINDOWS = 9 + BOOT_WINDOWS + CHECK_WINDOWS + 2  # what timing acquisition needs at start

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


class Receiver(BurstSearch):
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

    def _start_timing(self) -> bool:
        """Place the window grid (at start, or after a gap); False while too few samples wait.

        At start: the carrier offset over +-``cfo_max_ppm`` (whole subcarriers included,
        :func:`dsp.timing.coarse_cfo_hz`), symbol timing on the de-rotated central band, the
        first central reference and the drift rate (:meth:`_bootstrap_central`).  After a gap
        the timing model continues across the lost samples when the symbol timing agrees with
        it (within 3 samples); otherwise (a jump in the sample count) the grid is placed anew.
        """
        n, wf, buf = self.n, self.wf, self._buf
        first = buf.first_index()
        boot = self._ref["central"] is None
        need = STARTUP_WINDOWS if boot else 9
        if buf.windows_available(first) < need:
            return False
        x = buf.block(first, 9).windows(self.c0).reshape(-1)
        cfo = self.cfo_hz["central"]
        if cfo is None:
            cfo = coarse_cfo_hz(x, wf, self.cfg.cfo_max_ppm * 1e-6 * wf.carrier_freq_hz)
        t = np.arange(x.size)
        n_hat, _ = symbol_timing(x * np.exp(-2j * np.pi * cfo * t / self.fs), wf)
        cand = first + (n_hat - self.cfg.timing_guard_samples) % n
        if boot:
            self._next_nom = cand
            self._timing = TimingModel(anchor=cand)
            self.reference_index = cand
            self._bootstrap_central(cand, cfo)
            return True
        tm = self._timing
        x = cand - (round(float(tm.at(cand))) if self.cfg.timing_tracking else 0)
        nom = x + (tm.anchor - x + n // 2) % n - n // 2  # the nominal grid point whose window is near cand
        g = float(tm.at(nom)) if self.cfg.timing_tracking else 0.0
        if abs((nom + g - cand + n / 2) % n - n / 2) <= 3:
            self._next_nom = nom if nom + round(g) >= first else nom + n
        else:  # the sample count jumped: keep the rate, restart the offset on the new grid
            self._timing.move_anchor(cand)
            self._timing.offset = 0.0
            self._next_nom = cand
        return True

    def _bootstrap_central(self, start: int, cfo_coarse: float) -> None:
        """First central reference, fine CFO and drift rate from the windows at ``start``.

        The known symbol (strongest path at the guard) gives per-window samples whose lag
        products refine the CFO.  The drift is then measured over ``CHECK_WINDOWS`` windows
        and compared with the shared-reference prior ``cfo / fc``: the prior is kept when they
        agree within ``drift_check_ppm`` (real radios), else the measurement is used (radios
        whose sample clocks are not tied to their LOs, or an emulation without drift).
        """
        wf, n, c0 = self.wf, self.n, self.c0
        count = BOOT_WINDOWS + CHECK_WINDOWS
        block = self._buf.block(start, count)
        known = np.roll(wf.symbol_time, self.cfg.timing_guard_samples) * ramp(wf, cfo_coarse)
        zz = block.matmul(c0, np.conj(known).astype(np.complex64))
        frac = float(np.angle(np.vdot(zz[:-1], zz[1:]))) * self.fs / (2 * np.pi * n)
        spacing = self.fs / n
        cfo = frac + spacing * round((cfo_coarse - frac) / spacing)
        self.cfo_hz["central"] = cfo
        prior = -cfo / wf.carrier_freq_hz  # g rate: the symbol grid moves by -delta per sample
        rate, self._tied = prior, True
        if self.cfg.timing_tracking:
            got = self._measure_rate(block, zz)
            if got is not None:
                measured, sigma = got
                # the prior stands unless the measurement differs by more than its own noise
                # allows (4 standard errors; at least 0.05 ppm or 1 % of the prior, the
                # measurement's own bias: -0.05 ppm at 10 ppm) or by drift_check_ppm: a clock
                # untied from the LO with a CFO under drift_check_ppm is then caught too
                floor = max(DRIFT_CHECK_FLOOR, 0.01 * abs(prior))
                limit = min(self.cfg.drift_check_ppm * 1e-6, max(4 * sigma, floor))
                if abs(measured - prior) > limit:
                    rate, self._tied = measured, False
        else:
            rate, self._tied = 0.0, False
        self._timing.prior_rate = rate
        f = rate * n * np.arange(BOOT_WINDOWS)
        w = np.conj(zz[:BOOT_WINDOWS]) / np.maximum(np.abs(zz[:BOOT_WINDOWS]), 1e-30)
        sums = block.weighted_sum(c0, 0, BOOT_WINDOWS, w[None, :] * self._basis.powers(f).T)
        self._install("central", self._basis.align(sums, cfo) / BOOT_WINDOWS)

    def _measure_rate(self, block: WindowBlock, zz: np.ndarray) -> tuple[float, float] | None:
        """Drift rate (samples per sample) measured on the first windows, with no prior, and
        its standard error (from the scatter of the residuals about the last fit).

        A reference from the first 8 windows (at most 0.08 samples of drift at 10 ppm), then
        three passes of the delay residual of every window against it, each pass with the
        delays predicted by the previous rate, so that the residuals stay in the estimator's
        linear range (a single pass overestimated 10 ppm by 14 %).
        """
        n, c0, cfo = self.n, self.c0, self.cfo_hz["central"]
        head = 8
        w = np.conj(zz[:head]) / np.maximum(np.abs(zz[:head]), 1e-30)
        ref = block.weighted_sum(c0, 0, head, w) / head
        cols = self._basis.columns(ref, cfo)
        curv = self._basis.curvature(ref, cfo)
        zp = block.matmul(c0, cols)  # [window, P + 1]
        m = np.arange(len(zz), dtype=float) - (head - 1) / 2  # windows from the reference's centre
        rate, sigma = 0.0, np.inf
        for _ in range(3):
            f = np.clip(rate * n * m, -0.5, 0.5)
            e = self._basis.residuals(zp, f, curv)
            good = np.abs(rate * n * m) <= 0.5
            if good.sum() < 8:
                return None
            coef, cov = np.polyfit(m[good], e[good], 1, cov=True)
            rate += float(coef[0]) / n
            sigma = float(np.sqrt(max(cov[0, 0], 0.0))) / n
        return rate, sigma

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

    # ----- CW mode ------------------------------------------------------------
    def _cw(self, final: bool) -> list[Result]:
        if not self._history or not any(self._ref[b] is not None for b in self.sides):
            return []  # no side band acquired: no epoch to range on
        starts, z, rows = self._stacked()
        e = self.cfg.epoch_symbols
        if self._epoch_from is None:
            self._epoch_from = int(starts[0])
        out: list[Result] = []
        while True:
            i0 = int(np.searchsorted(starts, self._epoch_from))
            avail = len(starts) - i0
            if avail < e and not (final and avail >= e // 2):
                break
            hi = i0 + min(e, avail)
            st = starts[i0:hi]
            times = (st + self.n / 2) / self.fs
            weights: dict[str, np.ndarray] = {}
            # CW: the tag's data is known (constant); cut the epoch into known "symbols" so the
            # residual-frequency search sees the phase evolve across the epoch
            n_sub = max(1, min(32, (hi - i0) // 8))
            blocks = np.zeros((n_sub, hi - i0))
            blocks[np.arange(hi - i0) * n_sub // (hi - i0), np.arange(hi - i0)] = 1.0
            dem = demodulate(
                z[:, i0:hi], self._z_noise(rows), blocks, np.ones(n_sub), times, self.cfg.phase_track_max_hz
            )
            phases = self._phases(rows, i0, hi)
            for r, b in enumerate([self.bands[i] for i in rows]):
                g = dem.gains[r]
                ph = phases[r]
                weights[b] = cis(-2 * np.pi * (ph + dem.freq_offset_hz[r] * times)) * np.conj(g) / abs(g)
                self._set_cfo(b, self.cfo_hz[b] + 0.5 * dem.freq_offset_hz[r])
            if self._windows_kept(i0, hi):
                out.append(self._epoch(i0, hi, weights, st[0] / self.fs))
            self._epoch_from = int(st[-1]) + self.n
            if hi >= len(starts):
                break
        return out

    # ----- shared epoch maths ------------------------------------------------
    def _windows_kept(self, lo: int, hi: int) -> bool:
        """Whether history windows ``lo..hi`` still have their raw samples (not look-back only)."""
        pos = 0
        for s in self._history:
            m = s.starts.size
            if pos < hi and pos + m > lo and s.block is None:
                return False
            pos += m
        return True

    def _window_sum(self, band_row: int, lo: int, hi: int, w: np.ndarray) -> np.ndarray:
        """``sum_m w[m] window[m]`` over history windows ``lo..hi`` (spanning segments), each
        window aligned to the reference frame (its fractional delay undone, dsp.tracking)."""
        parts, pos = [], 0
        for s in self._history:
            m = s.starts.size
            if pos < hi and pos + m > lo:
                a, b = max(lo - pos, 0), min(hi - pos, m)
                ws = w[pos + a - lo : pos + b - lo]
                parts.append(SumPart(s.block, band_row, a, b, ws, s.f[a:b]))
            pos += m
        return self._align.window_sum(parts, self.cfo_hz[self.bands[band_row]])

    def _epoch(self, lo: int, hi: int, side_weights: dict[str, np.ndarray], time_s: float) -> RangingEpoch:
        z0 = np.concatenate([s.z[self.c0] for s in self._history])[lo:hi]
        w0 = np.conj(z0) / np.maximum(np.abs(z0), 1e-30)
        sums = {"central": self._window_sum(self.c0, lo, hi, w0)}
        norms = {"central": float(hi - lo)}
        self._refresh_central(sums["central"] / (hi - lo))
        for b, w in side_weights.items():
            sums[b] = self._window_sum(self.bands.index(b), lo, hi, w)
            norms[b] = float(np.sum(np.abs(w) ** 2))
        return ranging_epoch(
            self.wf,
            time_s,
            hi - lo,
            sums,
            norms,
            {b: float(self.cfo_hz[b]) for b in sums},
            {b: float(self.noise_var[b]) for b in sums},
            self.cfg.methods,
            self.cfg.ir_threshold,
            self.cfg.tx_rx_distance_m,
            self.calibration,
            self.d_cal_m,
            method_params=self.cfg.method_params,
            defer=self.defer_ranging,
        )

    def _refresh_central(self, new: np.ndarray) -> None:
        """New central reference (same phase as the old one) and noise probe at the current CFO."""
        old = self._ref["central"]
        self._install("central", new * np.exp(-1j * np.angle(np.vdot(old, new))))

    def _refresh_reference(self, band: str, cfr: np.ndarray) -> None:
        """Fold one packet's (or epoch's) CFR estimate into the band's reference.

        The estimate is first projected on the tap window (:meth:`TapSpace.denoise`).  The
        k-th estimate after acquisition gets weight ``1 / (k + 1)`` (a running mean with the
        acquisition's estimate counted as one), down to ``1 - reference_forget``: at -36 dB the
        blind acquisition's reference is about 1 dB short of the channel, and a fixed 5 %
        weight took some 20 packets to recover it; a seeded reference is kept as converged.
        """
        old = self._ref[band]
        new = symbol_from_cfr(self.wf, self._space.denoise(cfr), self.cfo_hz[band])
        new = new * np.exp(-1j * np.angle(np.vdot(old, new)))
        scale = np.sqrt(np.vdot(old, old).real / max(np.vdot(new, new).real, 1e-30))
        k = self._refreshes.get(band, 0) + 1
        self._refreshes[band] = k
        a = min(self.cfg.reference_forget, k / (k + 1))
        self._install(band, a * old + (1 - a) * new * scale)

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
