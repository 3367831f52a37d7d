#!/bin/sh
# Run `backscatter gui ARGS...` on a virtual X server and serve it over VNC on port 5900.
# VNC is unencrypted: x11vnc listens on localhost only unless VNC_LISTEN is set, so reach it
# through an SSH tunnel or publish the port to 127.0.0.1 only (docker/compose.yaml does).
# A password file (x11vnc -storepasswd) can be given in VNC_PASSWORD_FILE.
set -eu
DISPLAY_NUM="${DISPLAY_NUM:-99}"
GEOMETRY="${VNC_GEOMETRY:-1600x1000x24}"
mkdir -p "${XDG_RUNTIME_DIR:-/tmp/runtime}"
Xvfb ":${DISPLAY_NUM}" -screen 0 "${GEOMETRY}" -nolisten tcp &
xvfb_pid=$!
trap 'kill "$xvfb_pid" 2>/dev/null || true' EXIT INT TERM
export DISPLAY=":${DISPLAY_NUM}"
auth="-nopw"
if [ -n "${VNC_PASSWORD_FILE:-}" ]; then auth="-rfbauth ${VNC_PASSWORD_FILE}"; fi
# shellcheck disable=SC2086 # $auth holds two words on purpose
x11vnc -display "${DISPLAY}" -forever -shared -quiet -listen "${VNC_LISTEN:-localhost}" -rfbport 5900 $auth &
backscatter gui "$@"
