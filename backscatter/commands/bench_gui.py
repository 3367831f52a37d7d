"""The monitor's cost: ``backscatter bench --gui``.

A streamer (an emulated loop, ``--loop-s``, paced in real time), a worker and the GUI
(``backscatter gui --connect``) run as separate processes; the GUI draws into a real X server
(``Xvfb``, ``QT_QPA_PLATFORM=xcb``) unless ``offscreen`` is asked for.  After a settling time
the CPU time of the GUI, the X server and the worker is read from ``/proc/<pid>/stat``
(``utime + stime``) at the start and the end of the measured window: the share of one core is
their difference over the wall time (the worker's with its ranging process, and the streamer's).
Beside it: the worker's real-time factor (median of its ``health`` messages: the slower of its
receiver thread and its ranging process), samples lost and p95 latency, from an in-process
listener.

Target: the GUI at most :data:`TARGET_GUI_CORE_SHARE` of one core at its default refresh with
every panel of the Live tab visible.

On a shared 2-core machine the worker may fall behind real time, and the GUI then has fewer
results to draw: read ``epochs_per_s`` (10 when the worker keeps up) beside the GUI's share.
How the budget was reached (issue 18), as CPU the GUI needs per second of results at the full
rate (10 epochs, 10 packets, 2 spectra a second; the window fed in-process in simulated time
under Xvfb, so the figure does not depend on the machine's load; medians of 3-5 runs, the
machine shared with other engineers): antialiased, every panel at every 15 Hz tick 218 %;
antialiasing off 80 %; per-panel rates, visible panels only, status labels set only on change
32 %; CIR curves clipped to the view 28 %; fixed table column widths, one scatter per bit, spectra
1 Hz and packets 2 Hz 19 %; the range panel's robust axis and 60 s window 21 %; with the lab bar
21 %; CIRs 3 Hz, range and packets 1 Hz, inbox drained at 10 Hz 16.5 %.  This benchmark, live
(3 runs of 20 s): 23.8 % before that last step, 17.7 % after (the worker at 0.66x real time).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from backscatter.commands.bench_procs import (
    Listener,
    Process,
    backscatter_argv,
    free_tcp_endpoint,
    health_summary,
    loop_stream_argv,
    startup_budget_s,
    stop_all,
    wait_live,
    worker_argv,
)
from sdr.sources import DEFAULT_CHUNK_SAMPLES

TARGET_GUI_CORE_SHARE = 0.25
SCREEN = "1600x1000x24"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of process ``pid`` (s), or ``None`` once it has gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15 of stat)


def _children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (``/proc/*/stat``'s parent ids)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def tree_cpu_seconds(pid: int) -> dict[int, float] | None:
    """CPU seconds of ``pid`` and each live descendant (the worker's ranging process), by pid."""
    own = cpu_seconds(pid)
    if own is None:
        return None
    out = {pid: own}
    for child in _children(pid):
        t = cpu_seconds(child)
        if t is not None:
            out[child] = t
    return out


def _tree_share(pid: int, before: dict[int, float] | None, wall_s: float) -> float | None:
    """Share of one core used by ``pid`` and its descendants since ``before`` (a child that
    started later counts from 0)."""
    after = tree_cpu_seconds(pid)
    if after is None or before is None:
        return None
    return sum(t - before.get(p, 0.0) for p, t in after.items()) / wall_s


class XServer:
    """An ``Xvfb`` on a free display number (``-displayfd``); ``display`` is ``":N"``."""

    def __init__(self, screen: str = SCREEN):
        exe = shutil.which("Xvfb")
        if exe is None:
            raise RuntimeError("Xvfb is not installed (apt-get install xvfb xauth), or use --gui-offscreen")
        read_fd, write_fd = os.pipe()
        self.popen = subprocess.Popen(
            [exe, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp"],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as f:
            number = f.readline().strip()
        if not number.isdigit():
            self.close()
            raise RuntimeError("Xvfb did not report a display number")
        self.display = f":{number}"

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def _stop_gui(gui: subprocess.Popen) -> None:
    if gui.poll() is None:
        gui.terminate()
        try:
            gui.wait(10)
        except subprocess.TimeoutExpired:
            gui.kill()
            gui.wait(5)


def _share(pid: int | None, before: float | None, wall_s: float) -> float | None:
    after = cpu_seconds(pid) if pid is not None else None
    return None if after is None or before is None else (after - before) / wall_s


def bench_gui(
    measure_s: float = 30.0,
    settle_s: float = 8.0,
    loop_s: float = 1.0,
    paths: int = 2,
    snr_db: float = -25.0,
    methods: list[str] | None = None,
    offscreen: bool = False,
    gui_args: list[str] | None = None,
    seed: int = 1,
) -> dict:
    """Run streamer, worker and GUI; the GUI's, X server's and worker's CPU over ``measure_s``."""
    iq_ep, res_ep = free_tcp_endpoint(), free_tcp_endpoint()
    duration_s = startup_budget_s(loop_s) + settle_s + measure_s + 30.0
    x = None if offscreen else XServer()
    procs: list[Process] = []
    listener = None
    gui: subprocess.Popen | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-gui-") as tmp:
            log_dir = Path(tmp)
            stream_argv = loop_stream_argv(
                iq_ep, "push", loop_s, duration_s, seed, "default", DEFAULT_CHUNK_SAMPLES
            )
            stream_argv += ["--paths", str(paths), "--snr-db", f"{snr_db!r}"]
            stream = Process("stream", stream_argv, log_dir)
            procs.append(stream)
            worker = Process("worker", worker_argv(iq_ep, "pull", res_ep, methods=methods or ()), log_dir)
            procs.append(worker)
            listener = Listener(res_ep)
            wait_live(listener, stream, startup_budget_s(loop_s))
            env = dict(os.environ)
            if x is not None:
                env.update(DISPLAY=x.display, QT_QPA_PLATFORM="xcb")
            else:
                env.update(QT_QPA_PLATFORM="offscreen")
            gui_argv = backscatter_argv("gui", "--connect", res_ep, *(gui_args or []))
            gui_log = log_dir / "gui.log"
            with open(gui_log, "w") as log:
                gui = subprocess.Popen(gui_argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            time.sleep(settle_s)
            if gui.poll() is not None:
                raise RuntimeError(f"the GUI exited with {gui.returncode}: {gui_log.read_text()[-800:]}")
            pids = {
                "gui": gui.pid,
                "xserver": x.popen.pid if x else None,
                "stream": stream.popen.pid,
            }
            before = {k: cpu_seconds(p) if p is not None else None for k, p in pids.items()}
            worker_before = tree_cpu_seconds(worker.popen.pid)  # with its ranging process
            n_health, epochs0 = len(listener.health), listener.counts["epoch"]
            t0 = time.monotonic()
            time.sleep(measure_s)
            wall_s = time.monotonic() - t0
            shares = {k: _share(p, before[k], wall_s) for k, p in pids.items()}
            shares["worker"] = _tree_share(worker.popen.pid, worker_before, wall_s)
            health = [h for _, h in listener.health[n_health:]]
            epochs_per_s = (listener.counts["epoch"] - epochs0) / wall_s
            _stop_gui(gui)
            stop_all(procs)
            listener.close()
            listener = None
    finally:
        if gui is not None:
            _stop_gui(gui)
        stop_all(procs)
        if listener is not None:
            listener.close()
        if x is not None:
            x.close()
    hs = health_summary(health)
    lost = health[-1]["samples_lost"] - health[0]["samples_lost"] if len(health) >= 2 else None
    return {
        "display": "offscreen" if offscreen else f"Xvfb {SCREEN}, QT_QPA_PLATFORM=xcb",
        "measure_s": wall_s,
        "gui_core_share": shares["gui"],
        "xserver_core_share": shares["xserver"],
        "worker_core_share": shares["worker"],  # with its ranging process
        "stream_core_share": shares["stream"],
        "target_gui_core_share": TARGET_GUI_CORE_SHARE,
        "worker_realtime_factor_median": hs["realtime_factor_median"],
        "worker_ranging_realtime_factor_median": _median_of(health, "ranging_realtime_factor"),
        "worker_latency_p95_s_median": hs["latency_p95_s_median"],
        "samples_lost_in_window": lost,
        "epochs_per_s": epochs_per_s,  # what the GUI had to draw (10/s when the worker keeps up)
        "samples_lost_total": hs["samples_lost_total"],
        "stream": {"loop_s": loop_s, "paths": paths, "snr_db": snr_db, "methods": methods or ["default"]},
        "gui_args": gui_args or [],
    }


def _median_of(health: list[dict], key: str) -> float | None:
    vals = [h[key] for h in health if h.get(key)]
    return statistics.median(vals) if vals else None


def bench_gui_repeated(repeats: int, **kwargs) -> dict:
    """:func:`bench_gui` ``repeats`` times; medians of the shares beside every run."""
    runs = [bench_gui(**kwargs) for _ in range(max(1, repeats))]

    def med(key: str) -> float | None:
        vals = [r[key] for r in runs if r[key] is not None]
        return statistics.median(vals) if vals else None

    return {
        "repeats": len(runs),
        "gui_core_share_median": med("gui_core_share"),
        "xserver_core_share_median": med("xserver_core_share"),
        "worker_core_share_median": med("worker_core_share"),
        "stream_core_share_median": med("stream_core_share"),
        "worker_realtime_factor_median": med("worker_realtime_factor_median"),
        "worker_latency_p95_s_median": med("worker_latency_p95_s_median"),
        "epochs_per_s_median": med("epochs_per_s"),
        "samples_lost_in_window_max": max((r["samples_lost_in_window"] or 0 for r in runs), default=0),
        "target_gui_core_share": TARGET_GUI_CORE_SHARE,
        "runs": runs,
    }


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{1e3 * v:.0f} ms"


def describe(out: dict) -> str:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f} %"

    r0 = out["runs"][0]
    rtf = out["worker_realtime_factor_median"]
    return (
        f"GUI {pct(out['gui_core_share_median'])} of one core (target <= "
        f"{pct(out['target_gui_core_share'])}), X server {pct(out['xserver_core_share_median'])}, "
        f"worker {pct(out['worker_core_share_median'])} at {rtf or 0:.2f}x real time "
        f"(p95 latency {_ms(out.get('worker_latency_p95_s_median'))}), "
        f"streamer {pct(out.get('stream_core_share_median'))}, "
        f"{out['epochs_per_s_median'] or 0:.1f} epochs/s drawn; samples lost in the "
        f"window (max over runs) {out['samples_lost_in_window_max']}; medians of {out['repeats']} runs of "
        f"{r0['measure_s']:.0f} s ({r0['display']}); the machine may be shared: compare runs made together"
    )
