"""NOMP's parameters (:class:`dsp.ranging.nomp.Nomp`), typed and range-checked."""

from __future__ import annotations

from dataclasses import dataclass

from dsp.ranging.params import MethodParams, param


@dataclass(frozen=True)
class NompParams(MethodParams):
    method = "nomp"
    pfa: float = param(1e-3, "false-alarm probability of the stopping rule, per estimate", "(0, 0.5]")
    max_paths: int = param(24, "most paths fitted", "[1, 128]")
    newton_steps: int = param(3, "Newton steps on each new delay", "[0, 20]")
    final_steps: int = param(10, "Gauss-Newton steps on every delay after the last detection", "[0, 50]")
    merge_cells: float = param(0.05, "paths closer than this many resolution cells 1/B_occ merge", "[0, 1)")
    max_lead_m: float = param(
        150.0, "how far ahead of the strongest path the first path may lie", "(0, 1e4] m"
    )
    dynamic_range_db: float = param(
        40.0,
        "paths weaker than the strongest by more than this are not detected (model mismatch)",
        "[10, 100] dB",
    )
    first_path_db: float = param(
        15.0, "the first path is the earliest no weaker than the strongest by more than this", "(0, 100] dB"
    )
    refine_steps: int = param(4, "Gauss-Newton steps on every delay after each detection", "[0, 50]")
    near_cells: float = param(
        0.5,
        "a path this close (resolution cells) to another must beat the detection threshold with "
        "the other delays re-fitted (0: off)",
        "[0, 2]",
    )
    component_cells: float = param(
        0.15,
        "fitted paths closer than this many resolution cells are one component for the first-path rule",
        "[0, 1)",
    )
    cluster_cells: float = param(
        0.3,
        "components chained by gaps below this many cells form a cluster; a cluster none of whose "
        "components passes the first_path_db rule alone, but which passes it all at once, offers its "
        "most significant component as a first-path candidate (0: off)",
        "[0, 2]",
    )
    lead_test: bool = param(
        True,
        "a component ahead of the strongest must be needed: the fit without it, every path re-fitted and "
        "re-detected from the next component on, must score worse by the detection threshold "
        "(residual energy plus the threshold per path; dsp/ranging/nomp_lead.py)",
        "true / false",
    )
    lead_std_cells: float = param(
        0.1,
        "the lead test runs only where the first path's standard deviation (K-path bound of the fit) "
        "exceeds this many resolution cells",
        "[0, 10]",
    )

    def _validate(self) -> None:
        self._check_range("pfa", 0.0, 0.5, open_lo=True)
        self._check_range("max_paths", 1, 128)
        self._check_range("newton_steps", 0, 20)
        self._check_range("final_steps", 0, 50)
        self._check_range("refine_steps", 0, 50)
        self._check_range("first_path_db", 0.0, 100.0, open_lo=True)
        if not 0 <= self.merge_cells < 1:
            self._fail("merge_cells", "must be in [0, 1)")
        self._check_range("near_cells", 0.0, 2.0)
        if not 0 <= self.component_cells < 1:
            self._fail("component_cells", "must be in [0, 1)")
        self._check_range("max_lead_m", 0.0, 1e4, open_lo=True)
        self._check_range("dynamic_range_db", 10.0, 100.0)
        self._check_range("lead_std_cells", 0.0, 10.0)
        self._check_range("cluster_cells", 0.0, 2.0)
