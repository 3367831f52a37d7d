"""Run one ranging-sweep task and keep its epochs: their CFRs, ranges and deviations, and the truth.

    OPENBLAS_NUM_THREADS=1 OVR='{"phase_noise": false}' .venv/bin/python \\
        docs/results/nomp/session18/capture_task.py SEED KEY OUT.pkl [KEY=VALUE ...]

``KEY`` a task of ``backscatter sweep ranging`` (e.g. ``p4/s006/a0200``), ``KEY=VALUE`` the sweep's
``--set`` overrides (the same runs, since the sweep keys its streams by value), ``OVR`` JSON fields
set on every emulated scenario (one impairment off at a time).  Prints each measurement's errors.
"""

from __future__ import annotations

import json
import os
import pickle
import sys

sys.path.insert(0, ".")
import experiments.ranging as ranging
from experiments.engine import seed_sequence
from experiments.sweeps import get_sweep, make_config, parse_overrides


def main() -> None:
    seed, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    sweep = get_sweep("ranging")
    cfg = make_config(sweep, False, parse_overrides(sweep.config_cls, sys.argv[4:]))
    task = next(t for t in ranging.tasks(cfg) if t.key == key)
    seeds = {name: seed_sequence(seed, k) for name, k in task.seed_keys.items()}
    fields = json.loads(os.environ.get("OVR", "{}"))
    scenario_cls, receive = ranging.ScenarioConfig, ranging.receive_emulated
    ranging.ScenarioConfig = lambda **kw: scenario_cls(**{**kw, **fields})
    got = {}

    def spy(*args, **kw):
        got["emu"], got["run"] = receive(*args, **kw)
        return got["emu"], got["run"]

    ranging.receive_emulated = spy
    for row in task.fn(task.params, seeds)["rows"]:
        print({k: round(v, 2) for k, v in row.items() if k.startswith("err_")})
    epochs = got["run"].epochs[-cfg.n_measurements :]
    kept = [
        {"cfr": e.cfr, "range_m": e.range_m, "std": e.range_std_m, "delay_s": e.delay_s, "snr_db": e.snr_db}
        for e in epochs
    ]
    with open(out, "wb") as f:
        pickle.dump({"truth_m": got["emu"].truth.range_true_m, "epochs": kept}, f)


if __name__ == "__main__":
    main()
