"""Live X, Y, Z traces of the selected beads, optionally minus a reference bead."""

import numpy as np

from ._history import TrackHistory
from ._qt import QtWidgets, pg

AXIS_WIDTH_PX = 64
_COLOURS = [(255, 220, 0), (255, 90, 90), (90, 200, 255), (120, 255, 120), (230, 120, 255)]


class TracesPanel(QtWidgets.QWidget):
    """Three linked plots (x, y, z in nm against time) over a chosen time window."""

    #: The time window's spin box (it hides QWidget.window(), which nothing here calls).
    window: QtWidgets.QDoubleSpinBox  # type: ignore[assignment]

    def __init__(self, history: TrackHistory, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.window = QtWidgets.QDoubleSpinBox(minimum=0.5, maximum=3600, value=history.window_s)
        self.window.setSuffix(" s")
        self.window.valueChanged.connect(self._window_changed)
        self.reference = QtWidgets.QComboBox()
        self.reference.addItem("no reference", None)
        self.reference.currentIndexChanged.connect(lambda _i: self.refresh())
        controls = QtWidgets.QHBoxLayout()
        controls.addWidget(QtWidgets.QLabel("window"))
        controls.addWidget(self.window)
        controls.addWidget(QtWidgets.QLabel("minus"))
        controls.addWidget(self.reference)
        controls.addStretch(1)

        self.graphics = pg.GraphicsLayoutWidget()
        self.plots: list[pg.PlotItem] = []
        for row, axis in enumerate("xyz"):
            plot = self.graphics.addPlot(row=row, col=0)
            plot.setLabel("left", f"{axis} (nm)")  # no SI prefix: never "knm"
            # no grid: with one, every axis change repaints the whole plot area (grid lines
            # are drawn by the axes), the viewer's largest cost on a fast run (issue 9)
            # a fixed width: otherwise every new tick label re-lays-out the whole plot
            plot.getAxis("left").setWidth(AXIS_WIDTH_PX)
            # thousands of points a second: draw what the pixels can show
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            if self.plots:
                plot.setXLink(self.plots[0])
            self.plots.append(plot)
        for plot in self.plots[:-1]:  # one time axis for the three (linked): fewer to redraw
            plot.hideAxis("bottom")
        self.plots[-1].setLabel("bottom", "time since attached", units="s")
        # camera clocks start anywhere: times are shown from the run's first frame, else (the
        # viewer attached too late to know it) from the first row seen
        self.t0: float | None = None
        self.since_start = False
        self.curves: dict[int, list[pg.PlotDataItem]] = {}
        self.selected: list[int] = []
        self._drawn: tuple = ()  # what the curves show: skip redrawing when nothing changed

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.graphics, 1)

    def set_reference_choices(self, ids: np.ndarray, reference: np.ndarray) -> None:
        """Offer ``ids`` as references; pick the first reference bead the first time."""
        current = self.reference.currentData()
        wanted = [None, *[int(i) for i in ids]]
        have = [self.reference.itemData(i) for i in range(self.reference.count())]
        if wanted == have:
            return
        self.reference.blockSignals(True)
        self.reference.clear()
        for bead in wanted:
            ref = bead is not None and bool(reference[list(ids).index(bead)])
            name = "no reference" if bead is None else f"bead {bead}" + (" (ref)" if ref else "")
            self.reference.addItem(name, bead)
        if len(have) <= 1 and reference.any():  # first time: the run's reference bead
            self.reference.setCurrentIndex(1 + int(np.flatnonzero(reference)[0]))
        elif current in wanted:
            self.reference.setCurrentIndex(wanted.index(current))
        self.reference.blockSignals(False)

    def set_run_start(self, start: float | None) -> None:
        """Show times since ``start``, the camera time of the run's first frame (None: not
        known)."""
        if start is None or self.since_start:
            return
        self.t0, self.since_start = start, True
        self.plots[-1].setLabel("bottom", "time since the run's start", units="s")
        self._drawn = ()  # redraw on the new time axis

    def set_selected(self, beads: list[int]) -> None:
        """Plot these beads (first one is the primary selection)."""
        self.selected = list(beads)
        self.refresh()

    def refresh(self) -> None:
        """Redraw the curves from the history (nothing to do when no selected bead changed)."""
        ref = self.reference.currentData()
        state = (ref, self.history.window_s, *((b, self.history.version(b)) for b in self.selected))
        if ref is not None:
            state += (self.history.version(ref),)
        if state == self._drawn:
            return
        self._drawn = state
        for bead in list(self.curves):
            if bead not in self.selected:
                for plot, curve in zip(self.plots, self.curves.pop(bead), strict=True):
                    plot.removeItem(curve)
        for n, bead in enumerate(self.selected):
            if bead not in self.curves:
                pen = pg.mkPen(_COLOURS[n % len(_COLOURS)], width=1)
                self.curves[bead] = [p.plot(pen=pen, name=f"bead {bead}") for p in self.plots]
            data = self.history.series(bead, ref)
            if self.t0 is None and len(data):
                self.t0 = float(data[0, 0])
            t = data[:, 0] - (self.t0 or 0.0)
            for axis, curve in enumerate(self.curves[bead], start=1):
                curve.setData(t, data[:, axis])

    def points_shown(self) -> int:
        """How many points the curves hold in all (for tests and the status line)."""
        xs = (c.getData()[0] for cs in self.curves.values() for c in cs)
        return sum(0 if x is None else len(x) for x in xs)

    def _window_changed(self, value: float) -> None:
        self.history.window_s = value
        self.history.trim()
        self.refresh()
