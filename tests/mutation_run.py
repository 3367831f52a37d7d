"""The mutation check of docs/MUTATION.md (not a test module: run by hand).

mutmut 2.5.1 enumerates the mutants (``mutmut run`` once, stopped after its baseline, fills
``.mutmut-cache``); its own runner crashed here (``Mutant.line is required`` while saving a
status, then hangs), so this applies each mutant with ``mutmut apply ID``, runs the fast tests in
a child forked from one warm process (numpy, scipy, h5py and pytest imported once; the package
imported fresh from disk in each child, no bytecode written), restores the file and appends
``{"id", "file", "rc", "result", "s"}`` to OUT.jsonl (``killed``: the tests failed).

usage, from a separate git worktree (others' edits cannot interfere)::

    git worktree add /tmp/wt HEAD && cd /tmp/wt
    mutmut run --paths-to-mutate dsp/timing.py --runner true   # enumerate (stop after "Checking")
    PYTHONDONTWRITEBYTECODE=1 OPENBLAS_NUM_THREADS=1 nice -n 19 python tests/mutation_run.py \\
        /tmp/wt dsp/timing.py timing.jsonl tests/test_timing.py tests/test_tracking.py

``ONLY=1,2,3`` runs those mutant ids whatever their cached status (else the untested ones).

``--direct`` (no cache, no ``mutmut run``): mutmut 2.5.1's cache loses the line of some
mutants as ``mutmut apply`` renumbers it ("Obtained null mutant"; whole functions went missing),
so this enumerates the mutants with mutmut's own ``list_mutations`` on the file as it is and
builds each with ``mutate``, numbering them 0, 1, ... in source order; each record also has the
source line, its number and the mutated line (``was``, ``now``)::

    python tests/mutation_run.py --direct /tmp/wt dsp/tracking.py tracking.jsonl tests/test_tracking.py

``ONLY=ids`` as above; ``PAIRS=file.json`` (a list of ``[was, now]``) runs the mutants with
those lines, e.g. the survivors of an earlier run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time


def main(wt: str, file: str, out: str, tests: list[str]) -> None:
    sys.dont_write_bytecode = True
    os.chdir(wt)
    sys.path.insert(0, wt)
    import h5py  # noqa: F401
    import numpy  # noqa: F401
    import pytest
    import scipy.fft
    import scipy.linalg
    import scipy.signal
    import scipy.special
    import scipy.stats  # noqa: F401

    db = sqlite3.connect(f"{wt}/.mutmut-cache")
    rows = db.execute(
        "select m.id, m.status from Mutant m join Line l on m.line = l.id "
        "join SourceFile s on l.sourcefile = s.id where s.filename = ? order by m.id",
        (file,),
    ).fetchall()
    db.close()
    only = set(os.environ["ONLY"].split(",")) if os.environ.get("ONLY") else None
    try:
        with open(out) as f:
            done = {json.loads(line)["id"] for line in f}
    except FileNotFoundError:
        done = set()
    path = f"{wt}/{file}"
    with open(path) as f:
        orig = f.read()
    args = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:pytest-qt", "-p", "no:hypothesispytest", *tests]
    for mid, status in rows:
        wanted = str(mid) in only if only is not None else status == "untested"
        if mid in done or not wanted:
            continue
        subprocess.run(["mutmut", "apply", str(mid)], cwd=wt, capture_output=True, check=False)
        with open(path) as f:
            mutated = f.read() != orig
        start = time.time()
        rc = -1
        if mutated:
            pid = os.fork()
            if pid == 0:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
                try:
                    code = int(pytest.main(args))
                except BaseException:
                    code = 3
                os._exit(code)
            rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        with open(path, "w") as f:
            f.write(orig)
        result = "not_applied" if rc == -1 else ("survived" if rc == 0 else "killed")
        with open(out, "a") as f:
            f.write(
                json.dumps(
                    {"id": mid, "file": file, "rc": rc, "result": result, "s": round(time.time() - start, 1)}
                )
            )
            f.write("\n")


def _warm(wt: str) -> list[str]:
    sys.dont_write_bytecode = True
    os.chdir(wt)
    sys.path.insert(0, wt)
    import h5py  # noqa: F401
    import numpy  # noqa: F401
    import pytest  # noqa: F401
    import scipy.fft
    import scipy.linalg
    import scipy.signal
    import scipy.special
    import scipy.stats  # noqa: F401

    return ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:pytest-qt", "-p", "no:hypothesispytest"]


def _run_tests(args: list[str]) -> int:
    import pytest

    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        # a mutant that loops forever (``break`` to ``continue``) is ended by SIGALRM: rc -14, killed
        signal.alarm(int(os.environ.get("MUTANT_TIMEOUT_S", "120")))
        try:
            code = int(pytest.main(args))
        except BaseException:
            code = 3
        os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def direct(wt: str, file: str, out: str, tests: list[str]) -> None:
    """Every mutant of ``file`` from mutmut's enumerator, without its cache (see the module doc)."""
    from mutmut import Context, list_mutations, mutate

    args = [*_warm(wt), *tests]
    path = f"{wt}/{file}"
    with open(path) as f:
        orig = f.read()
    lines = orig.split("\n")
    only = set(os.environ["ONLY"].split(",")) if os.environ.get("ONLY") else None
    pairs = None
    if os.environ.get("PAIRS"):
        with open(os.environ["PAIRS"]) as f:
            pairs = {tuple(p) for p in json.load(f)}
    try:
        with open(out) as f:
            done = {json.loads(line)["id"] for line in f}
    except FileNotFoundError:
        done = set()
    for n, mid in enumerate(list_mutations(Context(source=orig, filename=path))):
        mutated, count = mutate(Context(source=orig, mutation_id=mid, filename=path))
        new_lines = mutated.split("\n")
        was = lines[mid.line_number].strip()
        now = new_lines[mid.line_number].strip() if len(new_lines) == len(lines) else "(lines changed)"
        if (
            n in done
            or (only is not None and str(n) not in only)
            or (pairs is not None and (was, now) not in pairs)
        ):
            continue
        start = time.time()
        rc = -1
        if count and mutated != orig:
            with open(path, "w") as f:
                f.write(mutated)
            try:
                rc = _run_tests(args)
            finally:
                with open(path, "w") as f:
                    f.write(orig)
        result = "not_applied" if rc == -1 else ("survived" if rc == 0 else "killed")
        rec = {"id": n, "file": file, "line": mid.line_number + 1, "index": mid.index, "was": was, "now": now}
        rec.update(rc=rc, result=result, s=round(time.time() - start, 1))
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "--direct":
        direct(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    else:
        main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
