"""The ranging methods of a live stream's epochs, run in other processes beside the receiver.

The receiver's own work per epoch (window sums, CFRs, CIRs, reference refresh) stays on the
worker's thread; the ranging methods (:func:`dsp.epoch.range_methods`) are what grows with the
methods enabled (every method on costs about as much CPU as the receiver), and on two cores a
second process runs them while the receiver goes on.  A thread would not do: NOMP's many small
array operations hold the GIL most of the time.

Epochs come back in the order they went in.  At most ``max_pending`` wait; past that
:meth:`RangingPool.submit` blocks on the oldest, so a pool that cannot keep up slows the worker
(whose real-time factor then shows it) instead of growing without bound.  Each answer carries
the seconds its methods took (wall clock in the pool's process), which the worker sets beside its
own busy time: the pipeline keeps real time when both stages do.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor

from dsp.epoch import RangingOutcome, range_methods
from dsp.results import RangingEpoch

DEFAULT_MAX_PENDING = 32  # epochs (about 3 s at the default 10 epochs a second)


PARENT_POLL_S = 0.5


def _init_process(worker_pid: int) -> None:
    """In each pool process: leave Ctrl-C to the worker (a terminal sends SIGINT to the whole
    process group; the worker stops, publishes what is queued and then closes the pool), and exit
    when the worker has gone without closing the pool (killed): the pool's queue keeps its own
    pipe open, so nothing else would end the process, which would also hold the worker's stdout
    and stderr open for whoever reads them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:  # (the worker may have died while this process was still importing)
        while os.getppid() == worker_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _warm_up() -> None:
    """Import the ranging code in the new process before the first epoch needs it, and fit NOMP
    once on a one-path CFR and ``nomp_product`` once on a three-path one: their compiled kernels
    load on their first call (0.1 s from numba's cache; where none can be written, NOMP's compile
    in 1-3 s and the product fit's in about 7 s), which the first epoch would otherwise wait."""
    import numpy as np

    from dsp.ranging import get_method
    from dsp.waveform import get_profile

    wf = get_profile("default")
    k = wf.active_subcarriers
    cfr = np.exp(-2j * np.pi * 3.0 * k / wf.fft_size) + 0.01 * np.cos(k)  # a path 3 samples in
    get_method("nomp", wf).fit(cfr)
    paths = ((1.0, 3.0), (0.7j, 4.1), (0.5, 6.3))  # (gain, delay in samples): offsets to factor
    cfr = sum(g * np.exp(-2j * np.pi * d * k / wf.fft_size) for g, d in paths) + 0.001 * np.cos(k)
    get_method("nomp_product", wf).side_delay_and_std_s(cfr[None])


class RangingPool:
    """``processes`` spawned processes running the deferred ranging of epochs (``epoch.job``)."""

    def __init__(self, processes: int = 1, max_pending: int = DEFAULT_MAX_PENDING):
        if processes < 1:
            raise ValueError(f"ranging pool: processes must be at least 1, got {processes}")
        if max_pending < 1:
            raise ValueError(f"ranging pool: max_pending must be at least 1, got {max_pending}")
        ctx = multiprocessing.get_context("spawn")  # the worker has threads: no fork
        self._ex = ProcessPoolExecutor(
            max_workers=processes, mp_context=ctx, initializer=_init_process, initargs=(os.getpid(),)
        )
        self._warm = [self._ex.submit(_warm_up) for _ in range(processes)]
        self.processes, self.max_pending = processes, max_pending
        self._pending: deque[tuple[RangingEpoch, Future]] = deque()
        self.busy_s = 0.0  # the methods' seconds, summed over the epochs collected
        self.submitted = 0

    def __len__(self) -> int:
        return len(self._pending)

    def submit(self, epoch: RangingEpoch) -> list[RangingEpoch]:
        """Queue ``epoch`` (its ``job`` set); returns the epochs completed meanwhile, in order
        (waiting for the oldest while more than ``max_pending`` are queued)."""
        if epoch.job is None:
            raise ValueError("ranging pool: the epoch has no deferred ranging (job)")
        self._pending.append((epoch, self._ex.submit(range_methods, epoch.job)))
        self.submitted += 1
        done = self.collect()
        while len(self._pending) > self.max_pending:
            done += self._pop()
        return done

    def collect(self, wait: bool = False) -> list[RangingEpoch]:
        """The epochs at the head of the queue whose ranging is done (``wait``: all of them)."""
        out: list[RangingEpoch] = []
        while self._pending and (wait or self._pending[0][1].done()):
            out += self._pop()
        return out

    def _pop(self) -> list[RangingEpoch]:
        epoch, fut = self._pending.popleft()
        outcome: RangingOutcome = fut.result()  # a method's exception surfaces here
        self.busy_s += outcome.busy_s
        return [outcome.fill(epoch)]

    def close(self) -> None:
        """Stop the processes (queued epochs are dropped: collect them first)."""
        self._pending.clear()
        self._ex.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> RangingPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
