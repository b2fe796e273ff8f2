"""The selected bead's live force, as the run estimates it (``live_force`` in its config)."""

import math

from ._qt import QtWidgets


def describe_force(estimate: dict[str, float] | None, bead: int | None) -> str:
    """``bead 0: 2.03 ± 0.15 pN (Allan, last 20 s; l = 3050 nm, fc 2.9 Hz)``, or why none."""
    if bead is None:
        return "force: no bead selected"
    if estimate is None or not math.isfinite(estimate["force_pn"]):
        return f"force, bead {bead}: – (no estimate yet, or a reference bead)"
    return (f"force, bead {bead}: {estimate['force_pn']:.3g} ± {estimate['force_err_pn']:.2g} pN "
            f"(Allan, last {estimate['seconds']:.0f} s; l = {estimate['extension_nm']:.0f} nm, "
            f"fc {estimate['corner_hz']:.2g} Hz)")  # fmt: skip


class ForcePanel(QtWidgets.QLabel):
    """One line: the selected bead's newest live force estimate; hidden in a run without."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("", parent)
        self.hide()

    def show_force(self, forces: dict[int, dict[str, float]] | None, bead: int | None) -> None:
        """Show ``bead``'s estimate from ``forces`` (:meth:`RunSource.forces`; None: no live
        force in this run, the panel stays hidden)."""
        if forces is None:
            return
        text = describe_force(forces.get(bead) if bead is not None else None, bead)
        if text != self.text():
            self.setText(text)
        self.show()
