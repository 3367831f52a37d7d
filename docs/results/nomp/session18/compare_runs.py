"""Two ranging-sweep runs of the same seed (``runs.csv``): per (NLoS, attenuation) a method's RMSE
and MUSIC's over it before -> after, every changed estimate, and errors above 10 m after.

    python3 docs/results/nomp/session18/compare_runs.py BASE_CSV NEW_CSV [METHOD]
"""

import csv
import math
import sys
from collections import defaultdict


def load(p):
    out = {}
    for r in csv.DictReader(open(p)):
        key = (int(r["n_nlos"]), int(r["scenario"]), float(r["attenuation_db"]), int(r["measurement"]))
        out[key] = {
            m: float(r[f"err_{m}_m"]) if r[f"err_{m}_m"] not in ("", "nan") else math.nan
            for m in ("music", "nomp", "nomp_product")
        }
    return out


b, n = load(sys.argv[1]), load(sys.argv[2])
method = sys.argv[3] if len(sys.argv) > 3 else "nomp_product"


def rmse(d, keys, m):
    v = [d[k][m] for k in keys if not math.isnan(d[k][m])]
    return math.sqrt(sum(x * x for x in v) / len(v)) if v else math.nan


groups = defaultdict(list)
for k in b:
    if k[0] > 0 and k in n:
        groups[(k[0], k[2])].append(k)
met_b = met_n = 0
for g in sorted(groups):
    ks = groups[g]
    rb, rn, mu = rmse(b, ks, method), rmse(n, ks, method), rmse(n, ks, "music")
    met_b += mu / rb >= 2
    met_n += mu / rn >= 2
    flag = "" if abs(rb - rn) < 1e-6 else " *"
    print(
        f"  {g[0]} NLoS {g[1]:.0f} dB: {method} {rb:.2f} -> {rn:.2f} m",
        f" ratio {mu / rb:.2f} -> {mu / rn:.2f}{flag}",
    )
ch = [
    (k, b[k][method], n[k][method])
    for k in b
    if k in n and k[0] > 0 and abs(b[k][method] - n[k][method]) > 1e-3
]
better = sum(abs(y) < abs(x) for _, x, y in ch)
print(
    f"  2x met: {met_b} -> {met_n} of {len(groups)};",
    f"changed {len(ch)}: closer {better}, farther {len(ch) - better}",
)
for k, x, y in sorted(ch, key=lambda t: abs(t[2]) - abs(t[1])):
    print(f"     p{k[0]}/s{k[1]:03d}/a{k[2]:.0f}/m{k[3]}: {x:+.2f} -> {y:+.2f}")
big = [(k, n[k][method]) for k in n if k[0] > 0 and abs(n[k][method]) > 10]
print("  errors > 10 m after:", len(big), "largest", max([abs(v) for _, v in big], default=0))
