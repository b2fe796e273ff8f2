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
    rows : list of str, optional
        What each row is called in an error (``line 3``); default ``row 1``, ``row 2``...
    source : str
        What the table is called in an error (its file).
    """

    def __init__(
        self,
        heights_mm: np.ndarray,
        forces_pn: np.ndarray,
        rows: list[str] | None = None,
        source: str = "force table",
    ) -> None:
        h = np.asarray(heights_mm, dtype=np.float64)
        f = np.asarray(forces_pn, dtype=np.float64)
        if h.shape != f.shape or h.ndim != 1 or len(h) < 2:
            raise ConfigError(f"{source}: needs two columns of equal length, at least 2 rows")
        rows = rows or [f"row {i}" for i in range(1, len(h) + 1)]
        invalid = np.flatnonzero(~(np.isfinite(h) & np.isfinite(f) & (f > 0)))
        if len(invalid):
            i = invalid[0]
            raise ConfigError(
                f"{source}, {rows[i]}: heights must be finite and forces finite and > 0 "
                f"(got {h[i]:g} mm, {f[i]:g} pN)"
            )
        order = np.argsort(h, kind="stable")
        h, f = h[order], f[order]
        bad = np.flatnonzero((np.diff(h) <= 0) | (np.diff(f) >= 0))
        if len(bad):
            k = bad[0]
            raise ConfigError(
                f"{source}, {rows[order[k + 1]]}: {f[k + 1]:g} pN at {h[k + 1]:g} mm after "
                f"{f[k]:g} pN at {h[k]:g} mm ({rows[order[k]]}): the force must fall strictly "
                "as the magnets rise (one force per height, one height per force)"
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
    force_pn; ``#`` comments and one header line allowed). Relative paths are from ``base``.

    Raises
    ------
    ConfigError
        One line naming the file and the row.
    """
    if isinstance(spec, ForceTable):
        heights, forces = np.array(spec.heights_mm), np.array(spec.forces_pn)
        return ForceCurve(heights, forces, source="protocol.force_table")
    path = spec if spec.is_absolute() or base is None else base / spec
    source = f"force table {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{source}: not a text file (expected lines of height_mm, force_pn)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{source}: {exc.strerror or exc}") from None
    rows, names = [], []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.replace(",", " ").replace(";", " ").split()
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            if rows:  # only the first line may be a header
                raise ConfigError(f"{source}, line {n}: not two numbers") from None
            continue
        if len(rows[-1]) != 2:
            raise ConfigError(f"{source}, line {n}: expected height_mm, force_pn")
        names.append(f"line {n}")
    if not rows:
        raise ConfigError(f"{source}: no rows")
    table = np.array(rows)
    return ForceCurve(table[:, 0], table[:, 1], names, source)
