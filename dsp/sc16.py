"""int16 I/Q pairs (sc16, ci16_le) to complex64 at memory speed.

One pass, written straight into the float32 view of the complex64 output (no float64, no
float32 temporary the size of the input, no copy that a view would do): a compiled loop per
channel (``dsp/sc16_kernel.py``) where the layout allows, else every block of int16 pairs cast
to float32 and scaled in one ufunc call.  The result equals the plain two-step
conversion ``pairs.astype(np.float32).view(np.complex64)[..., 0] * np.float32(1 / 32767)``
bit for bit: both compute ``float32(i) * float32(1 / 32767)`` in float32.
"""

from __future__ import annotations

import numpy as np

SC16_FULL_SCALE = 32767.0
"""int16 value of full scale 1.0."""
SC16_SCALE = np.float32(1.0 / SC16_FULL_SCALE)
BLOCK_SAMPLES = 1 << 16
"""Samples per conversion block along the sample axis (per channel row: 256 KiB in, 512 KiB out)."""


def complex64_pairs_view(out: np.ndarray) -> np.ndarray:
    """float32 ``[..., sample, 2]`` view (never a copy) of complex64 ``[..., sample]``.

    The sample axis must be contiguous (stride 8 bytes); other axes may have any stride.
    """
    if out.dtype != np.complex64:
        raise ValueError(f"output must be complex64, got {out.dtype}")
    if out.ndim == 0 or (out.shape[-1] > 1 and out.strides[-1] != out.itemsize):
        raise ValueError(
            f"output needs a contiguous sample axis, got shape {out.shape} strides {out.strides}"
        )
    if not out.flags.writeable:
        raise ValueError("output array is read-only")
    f = out.view(np.float32)  # [..., 2 * sample]: splitting the last axis below is always a view
    try:
        return np.reshape(f, (*out.shape, 2), copy=False)
    except TypeError:  # numpy < 2.1: no copy argument
        v = f.reshape(*out.shape, 2)
        assert v.base is not None
        return v


def _compiled_fits(pairs: np.ndarray, f: np.ndarray) -> bool:
    """Whether every channel's ``[sample, 2]`` of the int16 input (native byte order) and of the
    float32 output view is contiguous: the compiled loop's layout (``dsp/sc16_kernel.py``)."""
    return (
        pairs.dtype == np.int16
        and pairs.strides[-1] == 2
        and pairs.strides[-2] == 4
        and f.strides[-2] == 8  # f.strides[-1] is 4 by construction
    )


def sc16_to_complex64(
    pairs: np.ndarray, out: np.ndarray | None = None, block_samples: int = BLOCK_SAMPLES
) -> np.ndarray:
    """int16 pairs ``[..., sample, 2]`` (I, Q; 32767 = 1.0) to complex64 ``[..., sample]``.

    ``out`` (complex64 ``[..., sample]``, contiguous sample axis) is filled and returned when
    given, else a new array.  Where every channel's samples are contiguous in native byte order
    (the usual case) a compiled loop converts each channel in one pass; otherwise numpy does, in
    blocks of ``block_samples`` along the sample axis so that each block stays in cache.  Both
    give the same bits.
    """
    if pairs.dtype.kind != "i" or pairs.dtype.itemsize != 2:
        raise ValueError(f"sc16 needs int16 [..., sample, 2], got {pairs.dtype} {pairs.shape}")
    if pairs.ndim < 2 or pairs.shape[-1] != 2:
        raise ValueError(f"sc16 needs int16 [..., sample, 2], got shape {pairs.shape}")
    if block_samples < 1:
        raise ValueError(f"block_samples must be positive, got {block_samples}")
    if out is None:
        out = np.empty(pairs.shape[:-1], np.complex64)
    elif out.shape != pairs.shape[:-1]:
        raise ValueError(f"output shape {out.shape} does not match pairs {pairs.shape} (less the last axis)")
    f = complex64_pairs_view(out)
    n = pairs.shape[-2]
    if n and _compiled_fits(pairs, f):
        from dsp.sc16_kernel import scale_int16  # numba: imported on first use

        for row in np.ndindex(pairs.shape[:-2]):  # each channel's [sample, 2] is contiguous
            scale_int16(pairs[row].reshape(-1), SC16_SCALE, f[row].reshape(-1))
        return out
    for a in range(0, n, block_samples):
        b = min(a + block_samples, n)
        np.multiply(pairs[..., a:b, :], SC16_SCALE, out=f[..., a:b, :], dtype=np.float32)
    return out
