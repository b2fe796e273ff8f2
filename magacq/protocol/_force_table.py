"""Force against magnet height, interpolated monotonically (PCHIP of log force), and inverted.

Magnet forces fall about exponentially with height, so the table is interpolated in log force:
between its points the curve is then close to the physical one, and PCHIP keeps it monotonic.
The height for a force is the root of that same curve, so the two directions agree exactly.
"""

from pathlib import Path

import numpy as np

from magacq.errors import ConfigError

from ._steps import ForceTable


class ForceCurve:
    """A force table: ``force(height_mm)`` and its inverse ``height(force_pn)``.

    The curve is monotonic between the table's points, so each force has exactly one height.
    Values outside the table are refused, never extrapolated.

    Parameters
    ----------
    heights_mm, forces_pn : array_like
        The table; the force must fall strictly as the height rises.
    """

    def __init__(self, heights_mm: np.ndarray, forces_pn: np.ndarray) -> None:
        h = np.asarray(heights_mm, dtype=np.float64)
        f = np.asarray(forces_pn, dtype=np.float64)
        if h.shape != f.shape or h.ndim != 1 or len(h) < 2:
            raise ConfigError("force table: needs two columns of equal length, at least 2 rows")
        if not (np.isfinite(h).all() and np.isfinite(f).all() and (f > 0).all()):
            raise ConfigError("force table: heights must be finite and forces finite and > 0")
        order = np.argsort(h)
        h, f = h[order], f[order]
        if not (np.diff(h) > 0).all() or not (np.diff(f) < 0).all():
            raise ConfigError(
                "force table: the force must fall strictly as the magnets rise (one force per "
                "height, one height per force)"
            )
        self.heights_mm, self.forces_pn = h, f
        from scipy.interpolate import PchipInterpolator  # here: scipy takes ~0.5 s to import

        self._log_force = PchipInterpolator(h, np.log(f))

    @property
    def force_range(self) -> tuple[float, float]:
        return float(self.forces_pn[-1]), float(self.forces_pn[0])

    def force(self, height_mm: float) -> float:
        """The force (pN) at ``height_mm``; ConfigError outside the table."""
        lo, hi = self.heights_mm[0], self.heights_mm[-1]
        if not lo <= height_mm <= hi:
            raise ConfigError(
                f"magnet height {height_mm:g} mm is outside the force table ({lo:g}-{hi:g} mm)"
            )
        return float(np.exp(self._log_force(height_mm)))

    def height(self, force_pn: float) -> float:
        """The magnet height (mm) giving ``force_pn``; ConfigError outside the table."""
        lo, hi = self.force_range
        if not lo <= force_pn <= hi:
            raise ConfigError(
                f"force {force_pn:g} pN is outside the force table ({lo:.3g}-{hi:.3g} pN)"
            )
        k = int(np.clip(np.searchsorted(-self.forces_pn, -force_pn), 1, len(self.forces_pn) - 1))
        target = np.log(force_pn)
        h0, h1 = self.heights_mm[k - 1], self.heights_mm[k]
        if force_pn >= self.forces_pn[k - 1]:
            return float(h0)
        if force_pn <= self.forces_pn[k]:
            return float(h1)
        from scipy.optimize import brentq

        return float(brentq(lambda h: float(self._log_force(h)) - target, h0, h1, xtol=1e-12))


def load_force_table(spec: Path | ForceTable, base: Path | None = None) -> ForceCurve:
    """A :class:`ForceCurve` from inline lists or a two-column text/CSV file (height_mm,
    force_pn; ``#`` comments and one header line allowed). Relative paths are from ``base``."""
    if isinstance(spec, ForceTable):
        return ForceCurve(np.array(spec.heights_mm), np.array(spec.forces_pn))
    path = spec if spec.is_absolute() or base is None else base / spec
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"force table {path}: {exc.strerror or exc}") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.replace(",", " ").replace(";", " ").split()
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            if rows:  # only the first line may be a header
                raise ConfigError(f"force table {path}, line {n}: not two numbers") from None
            continue
        if len(rows[-1]) != 2:
            raise ConfigError(f"force table {path}, line {n}: expected height_mm, force_pn")
    if not rows:
        raise ConfigError(f"force table {path}: no rows")
    table = np.array(rows)
    return ForceCurve(table[:, 0], table[:, 1])
