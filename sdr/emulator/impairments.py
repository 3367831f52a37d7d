"""Hardware impairments of an unsynchronised lab: drawn once per scenario, applied per block.

Every value and where it comes from is in docs/RECEIVER.md ("Emulator impairments"); the
scenario fields are in :class:`~sdr.emulator.scenario.ScenarioConfig`.  Shapes are
``[sample]`` per channel; the emulator applies them in the radio's order: illumination x
(TX phase noise, common to all bands) x tag x channel, then per RX channel its LO phase
noise, the thermal noise, IQ imbalance, DC / LO leakage and the ADC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.bands import BANDS
from dsp.waveform import WaveformConfig
from sdr.emulator.phase_noise import PhaseNoise, coarse_decimation
from sdr.emulator.scenario import ScenarioConfig

ONE_GHZ = 1e9


@dataclass(frozen=True)
class ChannelFrontEnd:
    """One RX channel's static front-end errors.

    The IQ mixer: ``I' = I``, ``Q' = g (Q cos phi + I sin phi)``, i.e. ``y = mu x + nu conj(x)``
    with ``mu = (1 + g exp(j phi)) / 2``, ``nu = (1 - g exp(-j phi)) / 2``; ``dc`` is added
    after it (full scale 1.0).
    """

    gain_db: float
    phase_deg: float
    dc: complex

    @property
    def mu_nu(self) -> tuple[complex, complex]:
        g, phi = 10 ** (self.gain_db / 20), np.deg2rad(self.phase_deg)
        return (1 + g * np.exp(1j * phi)) / 2, (1 - g * np.exp(-1j * phi)) / 2

    @property
    def image_rejection_db(self) -> float:
        """``|mu|^2 / |nu|^2`` in dB (inf without imbalance)."""
        mu, nu = self.mu_nu
        return float("inf") if nu == 0 else float(10 * np.log10(abs(mu) ** 2 / abs(nu) ** 2))

    def apply(self, iq: np.ndarray) -> None:
        """In place on complex64 ``iq`` ``[sample]`` (any shape, C-contiguous)."""
        if self.gain_db or self.phase_deg:
            g, phi = 10 ** (self.gain_db / 20), np.deg2rad(self.phase_deg)
            v = iq.reshape(-1).view(np.float32).reshape(-1, 2)
            q = v[:, 1] * np.float32(g * np.cos(phi))
            q += v[:, 0] * np.float32(g * np.sin(phi))
            v[:, 1] = q
        if self.dc:
            iq += np.complex64(self.dc)

    def kernel_params(self) -> np.ndarray:
        """float32 ``[g cos phi, g sin phi, dc.re, dc.im, on]`` for ``noise_kernel.noise_tail``:
        the factors ``apply`` rounds to float32, ``on`` 1.0 when there is an IQ imbalance."""
        g, phi = 10 ** (self.gain_db / 20), np.deg2rad(self.phase_deg)
        dc = np.complex64(self.dc)
        on = 1.0 if (self.gain_db or self.phase_deg) else 0.0
        return np.array([g * np.cos(phi), g * np.sin(phi), dc.real, dc.imag, on], np.float32)


def tag_first_harmonic(duty: float) -> complex:
    """Complex amplitude of ``exp(+j 2 pi f_sh t)`` in a +-1 square wave of duty ``duty``
    (fraction of the period at +1, rising edge at ``t = 0``): ``(2 / pi) sin(pi D) exp(-j pi D)``,
    referred to the ideal ``D = 1/2`` (whose phase, ``-pi/2``, the band phase absorbs):
    ``(2 / pi) sin(pi D) exp(-j pi (D - 1/2))``.  The lower band takes the conjugate phase."""
    return complex(2 / np.pi * np.sin(np.pi * duty) * np.exp(-1j * np.pi * (duty - 0.5)))


class Impairments:
    """The drawn impairments of one emulation (all zero / off under ``ideal``).

    ``phase_noise(block)`` gives each band's total oscillator phase (TX + its RX channel +
    the tag's shift jitter) on the coarse grid; ``front_end[band]`` the channel's IQ and DC
    errors; ``retune_phase_rad`` the redrawn channel phases after each retune.
    """

    def __init__(
        self,
        wf: WaveformConfig,
        sc: ScenarioConfig,
        rate_hz: float,
        period: int,
        block_samples: int,
        signal_rms: float,
        rng: np.random.Generator,
        seed: tuple[int, ...],
    ):
        on = not sc.ideal
        bands = sc.bands
        self.bands, self.seed = bands, seed
        self.duty = 0.5 + (sc.tag_duty_error if on else 0.0)
        self.harmonic = tag_first_harmonic(self.duty)
        self.central_leak = 2 * self.duty - 1  # the square wave's mean: tag data into the central band
        self.jitter_rms_s = sc.tag_jitter_rms_s if on else 0.0
        # per channel (drawn for all three bands: the same draws for any band subset)
        self.front_end: dict[str, ChannelFrontEnd] = {}
        for band in BANDS:
            g = rng.uniform(-1, 1) * sc.iq_gain_imbalance_db
            p = rng.uniform(-1, 1) * sc.iq_phase_imbalance_deg
            dc_phase = rng.uniform(0, 2 * np.pi)
            if band not in bands:
                continue
            dc = 0.0
            if on and sc.dc_offset_dbc is not None:
                dc = signal_rms * 10 ** (sc.dc_offset_dbc / 20) * np.exp(1j * dc_phase)
            self.front_end[band] = ChannelFrontEnd(g if on else 0.0, p if on else 0.0, complex(dc))
        retunes = sc.retunes_s if on else ()
        self.retune_sample = np.array([round(t * rate_hz / period) * period for t in retunes], np.int64)
        drawn = rng.uniform(0, 2 * np.pi, (len(retunes), 3))  # [retune, band of BANDS3]
        self.retune_phase_rad = drawn[:, [BANDS3.index(b) for b in bands]]
        # phase noise: TX at fc, each RX channel at its band centre (own synthesiser), tag jitter
        self.decim = coarse_decimation(period, rate_hz)
        self._pn: dict[str, PhaseNoise] = {}
        self._seg_cache: dict[str, dict[int, np.ndarray]] = {}
        if on and sc.phase_noise:
            centers = wf.band_centers_hz
            for i, (name, fc) in enumerate([("tx", wf.carrier_freq_hz)] + [(b, centers[b]) for b in BANDS3]):
                mask = scaled_mask(sc.phase_noise_mask_dbc_hz, fc)
                pn = PhaseNoise(mask, rate_hz, block_samples, self.decim, (*seed, i))
                if name == "tx" or name in bands:
                    self._pn[name] = pn
        if self.jitter_rms_s > 0:
            # white jitter on the shift phase, flat over the coarse band with the full variance
            var = (2 * np.pi * wf.tag_shift_hz * self.jitter_rms_s) ** 2
            unit = PhaseNoise(((1.0, -100.0),), rate_hz, block_samples, self.decim, (*seed, 9))
            level = -100.0 + 10 * np.log10(var / unit.variance_rad2())  # output variance = var
            self._pn["tag"] = PhaseNoise(((1.0, level),), rate_hz, block_samples, self.decim, (*seed, 9))

    def summary(self, rate_hz: float) -> dict:
        """JSON-friendly record for the truth (``GroundTruth.impairments``)."""
        var = {name: pn.variance_rad2() for name, pn in self._pn.items()}
        pn_rms = {}
        for b in self.bands:
            v = var.get("tx", 0.0) + var.get(b, 0.0) + (var.get("tag", 0.0) if b != "central" else 0.0)
            pn_rms[b] = float(np.sqrt(v))
        fe = self.front_end
        irr = {b: fe[b].image_rejection_db for b in self.bands}
        return {
            "tag_duty": self.duty,
            "tag_first_harmonic": {
                "upper": [self.harmonic.real, self.harmonic.imag],
                "lower": [self.harmonic.real, -self.harmonic.imag],
            },
            "central_tag_leak": self.central_leak,
            "tag_jitter_rms_s": self.jitter_rms_s,
            "iq_gain_db": {b: fe[b].gain_db for b in self.bands},
            "iq_phase_deg": {b: fe[b].phase_deg for b in self.bands},
            "image_rejection_db": {b: (v if np.isfinite(v) else None) for b, v in irr.items()},
            "dc": {b: [fe[b].dc.real, fe[b].dc.imag] for b in self.bands},
            "retune_sample": [int(x) for x in self.retune_sample],
            "retune_phase_rad": {b: self.retune_phase_rad[:, i].tolist() for i, b in enumerate(self.bands)},
            "phase_noise_rms_rad": pn_rms,
            "phase_noise_band_hz": rate_hz / self.decim / 2,
        }

    @property
    def has_phase_noise(self) -> bool:
        return bool(self._pn)

    def phase_noise(self, block: int) -> dict[str, np.ndarray]:
        """Per band, the total phase ``[coarse sample]`` (``S + 1`` values) of block ``block``."""
        s = next(iter(self._pn.values())).seg
        out = {}
        for band in self.bands:
            phi = np.zeros(s + 1, np.float32)
            phi[:s] = self._band_segment(band, block)[s:]  # segment b: its second half
            phi += self._band_segment(band, block + 1)[: s + 1]  # segment b + 1: first half, centre
            out[band] = phi
        return out

    def _band_segment(self, band: str, j: int) -> np.ndarray:
        """Segment ``j`` of the band's total phase (``PhaseNoise.segment``): the sum of its
        oscillators' spectra (TX, the band's RX, the tag's shift, upper at fc + f_sh: +phase,
        lower: -phase) in one inverse FFT.  The last two per band are kept (blocks share one)."""
        cache = self._seg_cache.setdefault(band, {})
        if j not in cache:
            w = None
            for name, sign in (("tx", 1), (band, 1), ("tag", {"upper": 1, "lower": -1}.get(band, 0))):
                if name in self._pn and sign:
                    part = self._pn[name].spectrum(j)
                    w = (part if sign > 0 else -part) if w is None else (w + part if sign > 0 else w - part)
            first = next(iter(self._pn.values()))
            cache[j] = first.segment(w) if w is not None else np.zeros(2 * first.seg, np.float32)
            for old in [k for k in cache if k < j - 1]:
                del cache[old]
        return cache[j]

    def band_phase(self, band: str, phase0: float, start: np.ndarray) -> np.ndarray:
        """Channel phase ``[period]`` at period starts ``start``: ``phase0`` until the first retune."""
        phase = np.full(len(start), phase0)
        c = self.bands.index(band)
        for k, s in enumerate(self.retune_sample):
            phase[start >= s] = self.retune_phase_rad[k, c]
        return phase


BANDS3 = BANDS  # dsp/bands.py


def scaled_mask(mask: tuple[tuple[float, float], ...], lo_hz: float) -> tuple[tuple[float, float], ...]:
    """A synthesiser's mask given at 1 GHz moved to ``lo_hz``: ``+20 log10(lo / 1 GHz)`` dB."""
    shift = 20 * np.log10(lo_hz / ONE_GHZ)
    return tuple((f, level + shift) for f, level in mask)


def held_phasors(coarse_phase: np.ndarray) -> np.ndarray:
    """complex64 ``exp(j phi)`` ``[S]`` of ``coarse_phase`` ``[S + 1]`` (the last value unused),
    in float32 (numpy's SIMD cos/sin, a few ulp: 1e-7 rad against phases of ~0.01-0.1 rad)."""
    phi = np.asarray(coarse_phase[:-1], np.float32)
    out = np.empty(len(phi), np.complex64)
    pairs = out.view(np.float32).reshape(-1, 2)
    np.cos(phi, out=pairs[:, 0])
    np.sin(phi, out=pairs[:, 1])
    return out


def apply_phase(iq: np.ndarray, coarse_phase: np.ndarray, decim: int) -> None:
    """Multiply complex64 ``iq`` ``[sample]`` (``S * decim`` samples) by ``exp(j phi)``, ``phi``
    held for ``decim`` samples from ``coarse_phase`` ``[S + 1]`` (the last value unused)."""
    rows = iq.reshape(-1, decim)
    rows *= held_phasors(coarse_phase)[:, None]
