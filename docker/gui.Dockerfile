# syntax=docker/dockerfile:1
# GUI image: `backscatter gui` (PyQt5 + pyqtgraph) shown on the host's X server (X11 forwarding)
# or on a virtual one served over VNC (docker/gui-vnc.sh).  See docker/README.md.
#   docker build -f docker/gui.Dockerfile -t backscatter-gui .            (from the repository root)
FROM python:3.11-slim-bookworm

# The shared libraries Qt's xcb platform plugin loads (the PyQt5 wheel bundles Qt itself), fonts,
# and Xvfb + x11vnc for the VNC mode.  Debian package versions are left to the bookworm release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libdbus-1-3 libegl1 libfontconfig1 libgl1 libglib2.0-0 libxkbcommon-x11-0 \
        libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 \
        libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1 fonts-dejavu-core \
        xvfb x11vnc \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_RUNTIME_DIR=/tmp/runtime \
    QT_X11_NO_MITSHM=1

WORKDIR /opt/backscatter
COPY pyproject.toml README.md ./
COPY app ./app
COPY backscatter ./backscatter
COPY calibration ./calibration
COPY captures ./captures
COPY dsp ./dsp
COPY gui ./gui
COPY sdr ./sdr
COPY docker/gui-vnc.sh /usr/local/bin/gui-vnc
RUN pip install --no-cache-dir . \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin backscatter \
    && QT_QPA_PLATFORM=offscreen backscatter gui --help > /dev/null

USER 10001:10001
WORKDIR /data
ENTRYPOINT ["backscatter", "gui"]
CMD ["--help"]
