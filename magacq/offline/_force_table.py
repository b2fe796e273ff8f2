"""The lab's force table from a run at several magnet heights (``force_calibration`` recipe).

Each tethered bead's spectral forces against the plateaus' magnet heights are fitted with the
force law (:func:`magacq.analysis.fit_force_law`); the table is the median over the beads of
their laws at each height measured, strictly falling with height as the laws do, written as
``force_table.csv`` in the two-column form `protocol.force_table` reads.
"""

import csv
from pathlib import Path

import numpy as np

from magacq.analysis import ForceLaw, fit_force_law
from magacq.offline._analyze import RunAnalysis

__all__ = ["force_laws", "write_force_table"]

#: distinct magnet heights a run needs for a force table
MIN_HEIGHTS = 3


def force_laws(res: RunAnalysis) -> tuple[dict[int, ForceLaw], np.ndarray]:
    """Each bead's force law, and the distinct heights they were measured at (empty: the run
    did not hold the magnets at ``MIN_HEIGHTS`` heights). Beads whose law fails are problems."""
    laws: dict[int, ForceLaw] = {}
    heights = np.unique([r.plateau.magnet_mm for b in res.beads for r in b.plateaus
                         if np.isfinite(r.plateau.magnet_mm)])  # fmt: skip
    if len(heights) < MIN_HEIGHTS:
        return laws, np.empty(0)
    for b in res.beads:
        rows = [(r.plateau.magnet_mm, r.calibration.force.force_pn,
                 r.calibration.force.force_err_pn) for r in b.plateaus]  # fmt: skip
        try:
            laws[b.bead_id] = fit_force_law(*np.array(rows).T)
        except ValueError as exc:
            res.problems.append((b.bead_id, -1, f"bead {b.bead_id}: force law: {exc}"))
    return laws, heights


def write_force_table(res: RunAnalysis, out: Path) -> list[Path]:
    """``force_table.csv`` (median over beads) and ``force_law.csv`` (each bead's law, its
    errors, and its force at each height); nothing for a run at fewer heights."""
    laws, heights = force_laws(res)
    if not laws:
        return []
    per_bead = np.array([law.force(heights) for law in laws.values()])
    median = np.median(per_bead, axis=0)
    table = out / "force_table.csv"
    with table.open("w", newline="") as fh:
        fh.write(f"# magacq analyze {res.run.path.name}: the median over {len(laws)} beads of "
                 "their fitted laws, ln F a cubic in h (force_law.csv)\n")  # fmt: skip
        out_csv = csv.writer(fh)
        out_csv.writerow(["height_mm", "force_pn"])
        out_csv.writerows([[f"{h:g}", f"{f:.6g}"] for h, f in zip(heights, median, strict=True)])
    detail = out / "force_law.csv"
    with detail.open("w", newline="") as fh:
        out_csv = csv.writer(fh)
        coefs = [f"ln_f_h{p}" for p in range(4)]
        out_csv.writerow(["bead_id", *coefs, *[f"{c}_err" for c in coefs], "chi2", "dof",
                          *[f"force_pn_at_{h:g}_mm" for h in heights]])  # fmt: skip
        for bead, law in laws.items():
            err = np.sqrt(np.diag(law.cov))
            out_csv.writerow([bead, *law.coef, *err, law.chi2, law.dof, *law.force(heights)])
    return [table, detail]
