"""MUSIC's RMSE over a method's, pooled over several seeds' ranging-sweep runs, per path count and
attenuation (every scenario and measurement of every seed in one RMSE), and the largest error.

    python3 docs/results/nomp/session18/pooled.py [--method nomp_product] RUNS_CSV...
"""

from __future__ import annotations

import argparse
import csv
import math
from collections import defaultdict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="nomp_product")
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    errs: dict[tuple[int, float], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in args.runs:
        with open(path) as f:
            for r in csv.DictReader(f):
                key = (int(r["n_nlos"]), float(r["attenuation_db"]))
                for m in ("music", args.method):
                    v = r[f"err_{m}_m"]
                    if v not in ("", "nan"):
                        errs[key][m].append(float(v))
    print(f"{len(args.runs)} runs files; MUSIC RMSE / {args.method} RMSE = ratio, n; largest |error|")
    for key in sorted(errs):
        e = errs[key]
        rms = {m: math.sqrt(sum(x * x for x in v) / len(v)) for m, v in e.items()}
        worst = max(abs(x) for x in e[args.method])
        print(
            f"  {key[0]} NLoS, {key[1]:.0f} dB: {rms['music']:.3f} / {rms[args.method]:.3f} m ="
            f" {rms['music'] / rms[args.method]:.2f}x, n {len(e[args.method])}; largest {worst:.2f} m"
        )


if __name__ == "__main__":
    main()
