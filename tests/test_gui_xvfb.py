"""Smoke test in a real X server: streamer, worker and the GUI window (``QT_QPA_PLATFORM=xcb``).

Skipped, with one line saying why, where Xvfb is not installed (``make xvfb`` installs it; CI
runs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from PyQt5.QtGui import QImage

from backscatter.commands.bench_procs import (
    Listener,
    Process,
    backscatter_argv,
    free_tcp_endpoint,
    loop_stream_argv,
    stop_all,
    wait_live,
)
from sdr.sources import DEFAULT_CHUNK_SAMPLES

if shutil.which("xvfb-run") is None or shutil.which("Xvfb") is None:
    pytest.skip("Xvfb is not installed (make xvfb): real-X GUI smoke test skipped", allow_module_level=True)


def test_window_against_a_live_worker_in_a_real_x_server(tmp_path):
    iq, results = free_tcp_endpoint(), free_tcp_endpoint()
    procs: list[Process] = []
    listener = None
    try:
        stream = Process(
            "stream",
            [*loop_stream_argv(iq, "push", 0.5, 300.0, 3, "default", DEFAULT_CHUNK_SAMPLES), "--paths", "2"],
            tmp_path,
        )
        procs.append(stream)
        worker = backscatter_argv("worker", "--connect", iq, "--socket", "pull", "--bind", results, "--quiet")
        procs.append(Process("worker", worker, tmp_path))
        listener = Listener(results)
        wait_live(listener, stream, 240.0)
        png = tmp_path / "window.png"
        gui = backscatter_argv("gui", "--connect", results, "--exit-after-s", "12", "--screenshot", str(png))
        xvfb = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24"]
        env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}
        done = subprocess.run([*xvfb, *gui], env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        img = QImage(str(png))
        assert (img.width(), img.height()) == (1600, 1000)
        small = img.scaled(160, 100)
        assert len({small.pixel(x, y) for x in range(160) for y in range(100)}) > 50  # plots drawn
        assert listener.counts["epoch"] > 0  # the worker was live while the window was open
    finally:
        stop_all(procs)
        if listener is not None:
            listener.close()
