"""The periodic band-limited received symbol at arbitrary, stretched times, and the tag's waveform.

``s(u) = N**-0.5 sum_k Y[k] exp(j 2 pi k u / N)`` (``u`` in samples) is evaluated at
``u_n = n (1 + delta) - tau0`` for integer ``n``: the illumination as an RX whose
sample clock is off by ``delta`` sees it (SYSTEM.md section 3).  Work is done in
chunks of ``q N`` samples starting at ``n_c``: with ``m = n - n_c``,

    s(u_n) = N**-0.5 sum_k Y[k] e^{j 2 pi k a_c / N} e^{j 2 pi k m / N} e^{j 2 pi k m delta / N},

``a_c = (n_c mod N) + n_c delta - tau0``.  The last factor is expanded as a Taylor series
in ``m delta``; each term is one inverse FFT, and terms are added until the next one is
below ``1e-10`` of the signal (``x**P / P!``, ``x`` the largest stretch phase in a chunk),
far below float32.  With ``delta = 0`` one term is exact.  ``tests/test_oracle.py`` checks it against
the direct sum over subcarriers.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

TAYLOR_TOLERANCE = 1e-10
MAX_STRETCH_RAD = 0.1  # largest stretch phase 2 pi k_max m delta / N across one chunk


def plan_chunks(spectrum: np.ndarray, delta: float, count: int) -> tuple[int, int]:
    """``(periods per chunk q, Taylor terms P)`` for ``count`` samples at clock offset ``delta``.

    A chunk of ``q N`` samples has a stretch phase up to ``x = 2 pi k_max q |delta|``; ``P`` is
    the first order with ``x**P / P! < TAYLOR_TOLERANCE`` (the remainder of the series).
    """
    n = spectrum.size
    k_max = float(np.abs(np.fft.fftfreq(n, 1.0 / n)[np.abs(spectrum) > 0]).max())
    if delta == 0:
        return max(1, -(-count // n)), 1
    q = max(1, int(MAX_STRETCH_RAD / (2 * np.pi * k_max * abs(delta))))
    x = 2 * np.pi * k_max * q * abs(delta)
    p = 1
    while x**p / math.factorial(p) > TAYLOR_TOLERANCE:
        p += 1
    return q, p


def stretched(spectrum: np.ndarray, n_start: int, n_count: int, delta: float, tau0: float) -> np.ndarray:
    """``s(n (1 + delta) - tau0)`` for ``n = n_start .. n_start + n_count - 1``, ``[sample]`` complex128.

    ``spectrum`` is ``Y`` on all ``N`` bins ``[N]`` (natural FFT order).  Since
    ``e^{j 2 pi k m / N}`` has period ``N`` in ``m``, one inverse FFT per chunk and term
    gives every ``N``-sample period of a chunk of ``q N`` samples.
    """
    n = spectrum.size
    k = np.fft.fftfreq(n, 1.0 / n)  # signed subcarrier of every bin
    q, terms = plan_chunks(spectrum, delta, n_count)
    size = q * n
    chunks = -(-n_count // size)
    n_c = n_start + size * np.arange(chunks, dtype=np.int64)
    a_c = np.mod(n_c, n) + n_c * delta - tau0  # [chunk]
    term = spectrum[None, :] * np.exp(2j * np.pi * np.outer(a_c, k) / n)  # [chunk, N]
    step = 2j * np.pi * k * delta / n  # d/dm of the stretch phase, per bin
    periods = [term]  # Taylor coefficients per bin: term_p = term_0 * step**p / p!
    for p in range(1, terms):
        periods.append(periods[-1] * step[None, :] / p)
    # Horner in m = 0 .. q N - 1: out = P_0 + m (P_1 + m (P_2 + ...)), P_p = ifft(term_p) per period
    m = np.arange(size, dtype=np.float64).reshape(q, n)
    out = np.zeros((chunks, q, n), complex)
    for coef in reversed(periods):
        out *= m
        out += scipy.fft.ifft(coef, axis=1)[:, None, :]
    return (out * math.sqrt(n)).reshape(-1)[:n_count]


def tag_levels(n: np.ndarray, starts: np.ndarray, bits_pm: np.ndarray, symbol_samples: float) -> np.ndarray:
    """BPSK level (+1, -1, 0 when idle) at integer RX samples ``n`` ``[sample]``.

    Packet ``p`` starts at RX sample ``starts[p]`` (fractional); its bit ``j`` holds on
    ``starts[p] + j T <= n < starts[p] + (j + 1) T``, ``T = symbol_samples``.
    ``bits_pm`` is ``[packet, bit]`` of +-1.
    """
    out = np.zeros(n.shape)
    n_bits = bits_pm.shape[1]
    for s, sym in zip(starts, bits_pm, strict=True):
        j = np.floor((n - s) / symbol_samples).astype(np.int64)
        inside = (j >= 0) & (j < n_bits)
        out[inside] = sym[j[inside]]
    return out
