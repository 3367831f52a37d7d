#!/bin/sh
# Long fuzzing runs (what `make fuzz` runs), from any directory:
#   fuzz/run.sh                      # the `fuzz` profile: thousands of examples per fuzzer
#   FUZZ_EXAMPLES=20000 fuzz/run.sh  # more examples for tests/test_fuzz.py
#   fuzz/run.sh -k capture           # any pytest arguments: one fuzzer only
# Failures are saved in .hypothesis/ and replayed first on the next run.
set -eu
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export HYPOTHESIS_PROFILE=fuzz QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
exec "$VENV/bin/python" -m pytest tests/test_fuzz.py tests/test_transport.py tests/test_faults.py -q "$@"
