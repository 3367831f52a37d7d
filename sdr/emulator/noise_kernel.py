"""The emulator's per-sample tail in one compiled pass: phase noise, AWGN, IQ imbalance, DC, ADC.

numpy spent about 26 ns per complex sample on this tail (Box-Muller alone 17 ns: uniforms, a
logarithm, a cosine, a sine, each a pass over memory; then the phase, the mixer, the ADC);
this numba kernel does all of it in one pass over each band's samples, in cache chunks:
about 6 ns, 4-5 ns of it the noise (measured on the 2-core machine, loaded).

The noise (SYSTEM.md section 3: white, circular, Gaussian):

* bits: SplitMix64 (Steele, Lea and Flood 2014; Java's ``SplittableRandom``), counter-based:
  sample ``i`` of a stream with key ``k`` takes ``mix(k + (i + 1) * GAMMA)``, exactly the
  ``i``-th output of SplitMix64 seeded with ``k`` (BigCrush passes); each (block, band) has
  its own 64-bit key from a ``SeedSequence``, so any block is reproducible on its own;
* Box-Muller in polar form: the top 24 bits give ``u1 = (b + 1) / 2**24`` in ``(0, 1]``, the
  low 24 bits the phase ``2 pi j / 2**24``; ``z = sqrt(-ln u1) exp(j phase)`` has unit power
  with independent Gaussian I and Q of variance 1/2, cut at ``|z| <= sqrt(24 ln 2)`` (tail
  probability ``2**-24``), the same distribution as ``noise.complex_gaussian``;
* ``ln`` and ``sin``/``cos`` are polynomials in float32, branch-free so that LLVM vectorises
  them: ``ln m`` for ``m`` in ``[sqrt(1/2), sqrt(2))`` as ``2 atanh(x)``, ``x = (m - 1) / (m + 1)``,
  ``|x| <= 0.172``, to ``x**9`` (truncation ``2 x**11 / 11 < 7e-10``); ``sin``/``cos`` of
  ``y`` in ``[-pi/4, pi/4)`` (the phase's quadrant taken from its top two bits, exactly) to
  ``y**9`` / ``y**10`` (truncation ``(pi/4)**11 / 11! < 2e-9``).  What remains is float32
  rounding: ``|z - z_exact| <= 2e-6`` absolute (``tests/test_emulator_kernels.py`` derives
  and checks it), the order of numpy's float32 ``log``/``cos``/``sin`` in the numpy path.

The rest of the tail is the numpy path's float32 arithmetic, in its order (the central band's
tag leak added, ``apply_phase``, ``+= noise``, ``ChannelFrontEnd.apply``, the ADC's
``rint(v q) / q`` clipped at ``+-q``); multiply-adds may be fused (``fastmath={"contract"}``),
which moves a result by at most an ulp.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from dsp.jit import compiled

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MASK64 = (1 << 64) - 1
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S40 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(40)
_LOW24 = np.uint64(0xFFFFFF)

_f = np.float32
_MANT = np.int32((1 << 23) - 1)
_EXP_ONE = np.int32(127 << 23)
_SQRT2, _SQRT_HALF, _LN2 = _f(math.sqrt(2.0)), _f(math.sqrt(0.5)), _f(math.log(2.0))
_L1, _L3, _L5, _L7, _L9 = (_f(2 / k) for k in (1, 3, 5, 7, 9))  # 2 atanh(x) = sum 2 x^k / k
_S3, _S5, _S7, _S9 = (_f((-1) ** (k // 2) / math.factorial(k)) for k in (3, 5, 7, 9))
_C2, _C4, _C6, _C8, _C10 = (_f((-1) ** (k // 2) / math.factorial(k)) for k in (2, 4, 6, 8, 10))
_HALF, _ONE, _ZERO = _f(0.5), _f(1.0), _f(0.0)
_QUARTER_OFF = _f(1 << 21)  # y = (phase within its quadrant - 1/8 cycle) in radians
_PHASE_STEP = _f(math.pi / 2 / (1 << 22))
_24 = np.int32(24)
CHUNK = 2048
"""Samples per pass of the fused tail: its noise (16 KiB) and samples stay in L1."""


@intrinsic
def _f32_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


def stream_key(base: int, index: int) -> np.uint64:
    """The key of stream ``index`` (a block, a segment) of a generator keyed ``base``: output
    ``index`` of SplitMix64 seeded with ``base``, in Python integers (a ``SeedSequence`` per
    stream costs ~50 us; distinct indices give distinct, well-mixed 64-bit keys)."""
    z = (int(base) + (index + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return np.uint64(z ^ (z >> 31))


@compiled(inline="always", fastmath={"contract"})
def splitmix64(key: np.uint64, i: int) -> np.uint64:
    """Output ``i`` (from 0) of SplitMix64 seeded with ``key``."""
    z = key + np.uint64(i + 1) * GAMMA
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@compiled(inline="always", fastmath={"contract"})
def _gauss(bits: np.uint64) -> tuple[np.float32, np.float32, np.float32]:
    """``(r, cos, sin)`` with ``r = sqrt(-ln u1)`` of the 24 top bits and the phase of the 24 low."""
    kf = np.float32(np.int32(bits >> _S40) + np.int32(1))  # exact: at most 2**24
    b = _f32_bits(kf)
    e = (b >> np.int32(23)) - np.int32(127)
    m = _bits_f32((b & _MANT) | _EXP_ONE)  # [1, 2)
    big = m > _SQRT2
    m = m * _HALF if big else m
    e = e + np.int32(1) if big else e
    x = (m - _ONE) / (m + _ONE)
    x2 = x * x
    ln_m = x * (_L1 + x2 * (_L3 + x2 * (_L5 + x2 * (_L7 + x2 * _L9))))
    neg_ln_u = np.float32(_24 - e) * _LN2 - ln_m  # -ln(k / 2**24) = (24 - e) ln 2 - ln m
    r = math.sqrt(neg_ln_u if neg_ln_u > _ZERO else _ZERO)
    j = np.int32(bits & _LOW24)
    quad = j >> np.int32(22)
    y = (np.float32(j & np.int32(0x3FFFFF)) - _QUARTER_OFF) * _PHASE_STEP
    y2 = y * y
    s = y + y * y2 * (_S3 + y2 * (_S5 + y2 * (_S7 + y2 * _S9)))
    c = _ONE + y2 * (_C2 + y2 * (_C4 + y2 * (_C6 + y2 * (_C8 + y2 * _C10))))
    cq = (c - s) * _SQRT_HALF  # cos(y + pi/4)
    sq = (c + s) * _SQRT_HALF  # sin(y + pi/4)
    odd = (quad & np.int32(1)) != np.int32(0)
    co = -sq if odd else cq
    si = cq if odd else sq
    if quad >= np.int32(2):
        co, si = -co, -si
    return r, co, si


@compiled(error_model="numpy", fastmath={"contract"})
def _noise_chunk(key: np.uint64, first: int, m: int, scale: np.float32, out: np.ndarray) -> None:
    """``out[: 2 m]`` (float32 pairs) = samples ``first .. first + m`` of stream ``key`` times ``scale``."""
    for i in range(m):
        r, co, si = _gauss(splitmix64(key, first + i))
        r = r * scale
        out[2 * i] = r * co
        out[2 * i + 1] = r * si


@compiled(error_model="numpy", fastmath={"contract"})
def fill_complex_gaussian(key: np.uint64, scale: np.float32, out: np.ndarray) -> None:
    """``out`` (float32 ``[2 * sample]``, the view of complex64 ``[sample]``) = stream ``key``'s
    noise times ``scale``."""
    _noise_chunk(key, 0, out.shape[0] // 2, scale, out)


@compiled(error_model="numpy", fastmath={"contract"})
def noise_tail(
    v: np.ndarray,
    extra: np.ndarray,
    key: np.uint64,
    first: int,
    std: np.float32,
    phase: np.ndarray,
    decim: int,
    iq: np.ndarray,
    qlevels: np.float32,
) -> None:
    """In place on float32 ``v`` ``[2 * sample]`` (one band's complex64 ``[sample]`` viewed):

    plus ``extra`` (the same shape; empty: nothing added), times ``phase[i // decim]``
    (complex64 ``[coarse]``; empty: no phase noise), plus samples ``first ..`` of the noise
    stream ``key`` times ``std``, then the IQ mixer and DC: ``iq`` float32 ``[g cos phi,
    g sin phi, dc.re, dc.im, on]`` (``on`` 0: no IQ imbalance), then ``clip(rint(v q), -q, q)
    / q`` with ``q = qlevels`` (0: no ADC).
    """
    n = v.shape[0] // 2
    has_pn = phase.shape[0] > 0
    has_extra = extra.shape[0] > 0
    if has_extra and extra.shape[0] != v.shape[0]:
        raise ValueError("noise_tail: extra must match the samples")
    if has_pn and n > phase.shape[0] * decim:
        raise ValueError("noise_tail: fewer phase values than samples / decim")
    gc, gs, dcr, dci = iq[0], iq[1], iq[2], iq[3]
    has_iq = iq[4] != _ZERO
    q = qlevels
    step = max(decim, CHUNK // decim * decim)  # whole hold intervals per pass
    noise = np.empty(2 * step, np.float32)
    for a in range(0, n, step):
        m = min(step, n - a)
        _noise_chunk(key, first + a, m, std, noise)  # a loop of its own: vectorised
        w = v[2 * a : 2 * (a + m)]
        if has_extra:
            x = extra[2 * a : 2 * (a + m)]
            for i in range(2 * m):
                w[i] = w[i] + x[i]
        if has_pn:  # phase held for decim samples: a loop per hold, no division per sample
            for h in range(0, m, decim):
                p = phase[(a + h) // decim]
                pr, pi = p.real, p.imag
                for i in range(h, min(h + decim, m)):
                    re, im = w[2 * i], w[2 * i + 1]
                    w[2 * i] = re * pr - im * pi
                    w[2 * i + 1] = re * pi + im * pr
        for i in range(m):
            re = w[2 * i] + noise[2 * i]
            im = w[2 * i + 1] + noise[2 * i + 1]
            if has_iq:
                im = im * gc + re * gs
            re = re + dcr
            im = im + dci
            if q != _ZERO:
                re = min(max(np.float32(np.rint(re * q)), -q), q) / q
                im = min(max(np.float32(np.rint(im * q)), -q), q) / q
            w[2 * i] = re
            w[2 * i + 1] = im
