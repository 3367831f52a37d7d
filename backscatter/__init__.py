"""Bistatic OFDM backscatter testbed: the ``backscatter`` console script.

The receiver is designed for one core per process (more throughput comes from
more processes), so BLAS and OpenMP pools are pinned to one thread before numpy
loads unless the environment already says otherwise.  Oversubscribed BLAS
threads made the receiver several times slower on this 2-core machine.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
