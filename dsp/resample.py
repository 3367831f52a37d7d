"""Stateful rational resampler: capture rate to the working rate, chunk by chunk.

A polyphase FIR (``scipy.signal.upfirdn``) over a buffer that always starts on
an input sample whose index is a multiple of ``down``; outputs are produced only
where the filter support is complete, so any split of the input into chunks
yields exactly the same output samples as one call on the whole input.
"""

from __future__ import annotations

import numpy as np
import scipy.signal


def design_filter(up: int, down: int, passband_frac: float = 0.88, taps_per_phase: int = 24) -> np.ndarray:
    """Kaiser low-pass for ``up/down`` resampling; passband ``passband_frac`` of the output Nyquist."""
    rate = max(up, down)
    n = taps_per_phase * rate + 1
    cutoff = (1 + passband_frac) / 2 / rate  # centre of the transition band, cycles/sample at up-rate
    h = scipy.signal.firwin(n, 2 * cutoff, window=("kaiser", 8.0))
    return (h * up).astype(np.float32)


class StreamResampler:
    """Resample ``[channel, sample]`` chunks by ``up/down``; ``push`` returns what is ready."""

    def __init__(self, up: int, down: int, n_channels: int, h: np.ndarray | None = None):
        if up < 1 or down < 1:
            raise ValueError(f"resampling factors must be positive, got {up}/{down}")
        self.up, self.down = up, down
        self.h = design_filter(up, down) if h is None else np.asarray(h, np.float32)
        self.n_channels = n_channels
        self._buf = np.zeros((n_channels, 0), np.complex64)
        self._in_start = 0  # input index of _buf[:, 0], always a multiple of down
        self._out_next = 0  # next output index to emit
        self.delay_out = (len(self.h) - 1) / 2 / down  # group delay in output samples

    def push(self, x: np.ndarray) -> np.ndarray:
        """Feed ``[channel, sample]``; return the newly complete output ``[channel, sample]``."""
        self._buf = np.concatenate([self._buf, x.astype(np.complex64, copy=False)], axis=1)
        up, down, lh = self.up, self.down, len(self.h)
        n_in_end = self._in_start + self._buf.shape[1]
        # output j needs up-rate samples j*down - (lh-1) .. j*down, i.e. input <= j*down/up
        last_out = (n_in_end * up - 1) // down  # highest output index with full support on the right
        if last_out < self._out_next:
            return np.zeros((self.n_channels, 0), np.complex64)
        y = scipy.signal.upfirdn(self.h, self._buf, up, down, axis=1)
        first = self._in_start * up // down  # output index of y[:, 0]
        out = y[:, self._out_next - first : last_out + 1 - first].astype(np.complex64)
        self._out_next = last_out + 1
        # keep the input still needed by future outputs (filter length back), aligned to down
        need_from = max(0, (self._out_next * down - lh) // up)
        keep_from = (need_from // down) * down
        if keep_from > self._in_start:
            self._buf = self._buf[:, keep_from - self._in_start :]
            self._in_start = keep_from
        return out
