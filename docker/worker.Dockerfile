# syntax=docker/dockerfile:1
# Worker and recorder image: the testbed on Debian bookworm's Python 3.11, no radio drivers.
#   docker build -f docker/worker.Dockerfile -t backscatter-worker .      (from the repository root)
#   docker run --rm backscatter-worker worker --help
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /opt/backscatter
COPY pyproject.toml README.md ./
COPY app ./app
COPY backscatter ./backscatter
COPY calibration ./calibration
COPY captures ./captures
COPY dsp ./dsp
COPY gui ./gui
COPY sdr ./sdr
RUN pip install --no-cache-dir . \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin backscatter \
    && backscatter --help > /dev/null

USER 10001:10001
WORKDIR /data
ENTRYPOINT ["backscatter"]
CMD ["--help"]
