# syntax=docker/dockerfile:1
# Streamer image: `backscatter stream --source uhd` with Debian's UHD 4.3 Python bindings.
#   docker build -f docker/streamer.Dockerfile -t backscatter-streamer .  (from the repository root)
# `pip install uhd` has no wheel for this platform, so UHD comes from Debian (python3-uhd,
# uhd-host) and the testbed goes into a virtual environment made from Debian's /usr/bin/python3
# with --system-site-packages, which sees the `uhd` module.  numpy: see constraints-uhd.txt.
FROM debian:bookworm-slim

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-venv python3-uhd uhd-host \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /opt/backscatter
COPY docker/constraints-uhd.txt ./
COPY pyproject.toml README.md ./
COPY app ./app
COPY backscatter ./backscatter
COPY calibration ./calibration
COPY captures ./captures
COPY dsp ./dsp
COPY gui ./gui
COPY sdr ./sdr
# The build fails unless uhd imports cleanly against the venv's numpy 1.x.
RUN /usr/bin/python3 -m venv --system-site-packages "$VIRTUAL_ENV" \
    && pip install --no-cache-dir --constraint constraints-uhd.txt . \
    && python -c "import numpy, uhd; assert numpy.__version__.startswith('1.'), numpy.__version__" 2>&1 \
        | tee /tmp/uhd-import.log \
    && ! grep -q "_ARRAY_API" /tmp/uhd-import.log \
    && rm /tmp/uhd-import.log \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin backscatter \
    && backscatter stream --help > /dev/null

USER 10001:10001
WORKDIR /data
ENTRYPOINT ["backscatter"]
CMD ["stream", "--help"]
