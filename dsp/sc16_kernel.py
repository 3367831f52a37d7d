"""The compiled loop of ``dsp.sc16``: int16 pairs to float32 pairs times a float32 scale.

One streaming pass (read 4 bytes, write 8 per sample, no temporary): numpy's
``np.multiply(int16, float32, dtype=float32)`` casts through a buffer first and runs at about
0.55 of a copy of the output's bytes; this loop at about 0.8 (``backscatter bench``, convert).
Each value is ``float32(i) * scale`` rounded once in float32, as in numpy: the same bits.
Imported on the first conversion (numba's import takes about half a second).
"""

from __future__ import annotations

import numpy as np

from dsp.jit import compiled


@compiled(error_model="numpy")
def scale_int16(src: np.ndarray, scale: np.float32, dst: np.ndarray) -> None:
    """``dst[i] = float32(src[i]) * scale``; ``src`` int16 ``[value]``, ``dst`` float32 ``[value]``,
    both contiguous, of one length."""
    for i in range(src.shape[0]):
        dst[i] = np.float32(src[i]) * scale
