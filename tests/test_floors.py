"""The packages keep their floors (docs/ARCHITECTURE.md): none imports a package above it.

Every ``import`` counts, at module level or inside a function, read from the source (AST).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BELOW = {
    "dsp": set(),
    "h5safe": set(),
    "captures": {"dsp", "h5safe"},
    "calibration": {"dsp", "h5safe"},
    "sdr": {"dsp", "h5safe", "captures"},
    "app": {"dsp", "h5safe", "captures", "calibration", "sdr"},
    "gui": {"dsp", "h5safe", "captures", "calibration", "sdr", "app"},
    "experiments": {"dsp", "h5safe", "captures", "calibration", "sdr", "app"},
    "backscatter": {"dsp", "h5safe", "captures", "calibration", "sdr", "app", "gui", "experiments"},
}
KNOWN: set[tuple[str, str]] = set()  # no exceptions left: the compatibility shims are gone


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(BELOW)


def test_no_package_imports_a_floor_above_it():
    wrong = []
    for pkg, allowed in BELOW.items():
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for other in sorted(imported_packages(path) - allowed - {pkg}):
                if (rel, other) not in KNOWN:
                    wrong.append(f"{rel} imports {other}")
    assert not wrong, "imports against the floors of docs/ARCHITECTURE.md:\n" + "\n".join(wrong)
