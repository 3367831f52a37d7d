"""Experiment sweeps of the paper's figures and tables on the emulator, fanned out on dask.

``backscatter sweep {nmae,resolvability,ber,ranging}`` runs one of them (see
docs/RESULTS.md); :mod:`experiments.engine` holds the seeding, checkpointing and
dask plumbing, :mod:`experiments.replay` the fan-out of ``replay`` over many files.

The receiver is designed for one core per process, so BLAS and OpenMP pools are
pinned to one thread before numpy loads (as the CLI does), unless the environment
says otherwise; dask workers inherit the setting.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
