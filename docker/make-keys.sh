#!/bin/sh
# Per-service CURVE key directories for docker/compose.yaml: each service holds only its own
# secret key and the public keys it needs.  Uses nothing but `backscatter keys`.
#   docker/make-keys.sh [OUT_DIR]          (default docker/keys; refuses to overwrite)
# Layout (what `--keys DIR` reads, see sdr/security.py):
#   OUT/streamer  server.key_secret (stream identity S), authorized_clients/{worker,recorder}.key
#   OUT/worker    client.key_secret (worker's identity towards S), server.key (S public),
#                 server.key_secret (results identity W), authorized_clients/{gui,listen}.key
#   OUT/recorder  client.key_secret, server.key (S public)
#   OUT/gui       client.key_secret, server.key (W public)
#   OUT/listen    client.key_secret, server.key (W public)   (for `backscatter listen` on the host)
set -eu
OUT="${1:-docker/keys}"
BACKSCATTER="${BACKSCATTER:-backscatter}"
if [ -e "$OUT" ]; then
    echo "make-keys: $OUT exists; remove it first (keys are never overwritten)" >&2
    exit 2
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
$BACKSCATTER keys --out "$tmp/stream" --client worker --client recorder > /dev/null
$BACKSCATTER keys --out "$tmp/results" --client gui --client listen > /dev/null
umask 077
mkdir -p "$OUT/streamer/authorized_clients" "$OUT/worker/authorized_clients" \
    "$OUT/recorder" "$OUT/gui" "$OUT/listen"
secret() { install -m 600 "$1" "$2"; }
public() { install -m 644 "$1" "$2"; }
secret "$tmp/stream/server.key_secret" "$OUT/streamer/server.key_secret"
public "$tmp/stream/server.key" "$OUT/streamer/server.key"
public "$tmp/stream/authorized_clients/worker.key" "$OUT/streamer/authorized_clients/worker.key"
public "$tmp/stream/authorized_clients/recorder.key" "$OUT/streamer/authorized_clients/recorder.key"
secret "$tmp/stream/worker.key_secret" "$OUT/worker/client.key_secret"
public "$tmp/stream/server.key" "$OUT/worker/server.key"
secret "$tmp/results/server.key_secret" "$OUT/worker/server.key_secret"
public "$tmp/results/authorized_clients/gui.key" "$OUT/worker/authorized_clients/gui.key"
public "$tmp/results/authorized_clients/listen.key" "$OUT/worker/authorized_clients/listen.key"
secret "$tmp/stream/recorder.key_secret" "$OUT/recorder/client.key_secret"
public "$tmp/stream/server.key" "$OUT/recorder/server.key"
for c in gui listen; do
    secret "$tmp/results/$c.key_secret" "$OUT/$c/client.key_secret"
    public "$tmp/results/server.key" "$OUT/$c/server.key"
done
chmod 755 "$OUT" "$OUT"/* "$OUT"/*/authorized_clients
echo "make-keys: wrote $OUT/{streamer,worker,recorder,gui,listen}"
