"""The live camera image with contrast control and the bead ROIs drawn over it."""

import math
import time

import numpy as np

from ._qt import QtCore, QtWidgets, pg
from ._source import Beads

_PENS = {
    "bead": pg.mkPen((0, 220, 0), width=1),
    "reference": pg.mkPen((0, 200, 255), width=1, style=QtCore.Qt.PenStyle.DashLine),
    "selected": pg.mkPen((255, 220, 0), width=2),
}


def auto_levels(image: np.ndarray) -> tuple[float, float]:
    """Contrast limits from the 0.5th and 99.5th percentiles of a subsample of ``image``."""
    step = max(1, image.shape[0] // 256)
    lo, hi = np.percentile(image[::step, ::step], (0.5, 99.5))
    return float(lo), float(max(hi, lo + 1))


class ImagePanel(QtWidgets.QWidget):
    """Camera image, histogram/contrast, ROI rectangles; emits clicks in pixel coordinates.

    Signals
    -------
    clicked(x, y, modifiers)
        A left click on the image, at pixel (x along columns, y along rows).
    """

    clicked = QtCore.Signal(float, float, object)

    #: Seconds between auto-contrast and histogram updates: both cost far more than drawing a
    #: frame, and neither needs to follow the camera frame by frame (issue 9).
    LEVELS_PERIOD_S = 1.0

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.image_item = pg.ImageItem()
        self.view.addItem(self.image_item)
        self.hist = pg.HistogramLUTItem(image=self.image_item)
        self.graphics.addItem(self.hist)
        # the histogram would recompute (and re-lay-out its axis) on every new image: it is
        # refreshed on the levels period instead (``_refresh_histogram``)
        self.image_item.sigImageChanged.disconnect(self.hist.imageChanged)
        self._levels_at = -math.inf
        self._auto_levels: tuple[float, float] | None = None
        self._outlines = {k: pg.PlotDataItem(pen=pen, connect="pairs") for k, pen in _PENS.items()}
        for item in self._outlines.values():
            item.setZValue(10)
            self.view.addItem(item)
        self._labels: list[pg.TextItem] = []

        self.auto = QtWidgets.QCheckBox("Auto contrast")
        self.auto.setChecked(True)
        self.low = QtWidgets.QDoubleSpinBox(decimals=0, maximum=2**32)
        self.high = QtWidgets.QDoubleSpinBox(decimals=0, maximum=2**32)
        for box in (self.low, self.high):
            box.setKeyboardTracking(False)
            box.valueChanged.connect(self._levels_typed)
        self.hist.sigLevelsChanged.connect(self._levels_dragged)
        self.frame_label = QtWidgets.QLabel("no frame yet")
        # a label that changes width with its text re-lays-out the panel on every frame
        self.frame_label.setMinimumWidth(self.frame_label.fontMetrics().horizontalAdvance("8" * 16))
        help_text = QtWidgets.QLabel(
            "click: select · ctrl+click: add to selection · shift+click: add/remove ROI"
        )
        help_text.setStyleSheet("color: gray")

        controls = QtWidgets.QHBoxLayout()
        controls.addWidget(self.auto)
        controls.addWidget(QtWidgets.QLabel("min"))
        controls.addWidget(self.low)
        controls.addWidget(QtWidgets.QLabel("max"))
        controls.addWidget(self.high)
        controls.addStretch(1)
        controls.addWidget(self.frame_label)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addLayout(controls)
        layout.addWidget(help_text)
        self.graphics.scene().sigMouseClicked.connect(self._on_click)
        self.image: np.ndarray | None = None
        self._step = 1

    # --- image ----------------------------------------------------------------------------
    def show_image(self, frame: int, image: np.ndarray) -> None:
        """Show ``image`` (frame number ``frame``), with auto levels if that is on.

        Auto levels and the histogram are recomputed at most every ``LEVELS_PERIOD_S``.
        """
        first = self.image is None
        self.image = image
        now = time.monotonic()
        slow_tick = first or now - self._levels_at >= self.LEVELS_PERIOD_S
        auto = self.auto.isChecked()
        if auto and (slow_tick or self._auto_levels is None):
            self._auto_levels = auto_levels(image)
        levels = self._auto_levels if auto else self.levels()
        step = self._display_step(first)
        # a frame larger than the screen shows it is decimated to about the screen's size: what
        # Qt's unsmoothed scaling would draw anyway, without converting the pixels it drops
        self.image_item.setImage(image[::step, ::step], levels=levels, autoLevels=False)
        if first or step != self._step:
            self._step = step
            height, width = image.shape
            self.image_item.setRect(QtCore.QRectF(0, 0, width, height))  # axes stay in pixels
        if slow_tick:
            self._levels_at = now
            self._refresh_histogram()
        if auto:
            assert levels is not None  # auto levels were computed above
            self.set_levels(*levels, keep_auto=True)
        if first:
            self.view.autoRange(padding=0)
        self.frame_label.setText(f"frame {frame}")

    def _display_step(self, first: bool) -> int:
        """Keep every n-th pixel: n image pixels share one screen pixel, as zoomed now (>= 1)."""
        if first:
            return 1  # not placed on screen yet
        px_w, px_h = self.view.viewPixelSize()  # image pixels per (logical) screen pixel
        return max(1, int(min(px_w, px_h) / self.graphics.devicePixelRatioF()))

    def _refresh_histogram(self) -> None:
        # the histogram re-emits its levels on a new image: that is not the user dragging them
        self.hist.blockSignals(True)
        self.hist.imageChanged()
        self.hist.blockSignals(False)

    def levels(self) -> tuple[float, float]:
        """The contrast limits in use (black, white)."""
        lo, hi = self.hist.getLevels()
        return float(lo), float(hi)

    def set_levels(self, low: float, high: float, keep_auto: bool = False) -> None:
        """Set fixed contrast limits (turns auto contrast off unless ``keep_auto``)."""
        if not keep_auto:
            self.auto.setChecked(False)
        if (low, high) != self.levels():
            self.hist.blockSignals(True)
            self.hist.setLevels(low, high)
            self.hist.blockSignals(False)
        current = self.image_item.getLevels()
        if current is None or tuple(np.ravel(current)) != (low, high):
            self.image_item.setLevels((low, high))
        for box, value in ((self.low, low), (self.high, high)):
            if box.value() != value:
                box.blockSignals(True)
                box.setValue(value)
                box.blockSignals(False)

    def _levels_typed(self) -> None:
        self.set_levels(self.low.value(), max(self.high.value(), self.low.value() + 1))

    def _levels_dragged(self) -> None:
        self.set_levels(*self.levels())

    # --- ROIs -----------------------------------------------------------------------------
    def show_beads(self, beads: Beads, selected: set[int]) -> None:
        """Draw every ROI: reference beads dashed cyan, selected yellow, the others green."""
        groups: dict[str, list[np.ndarray]] = {key: [] for key in _PENS}
        for label in self._labels:
            self.view.removeItem(label)
        self._labels = []
        rows = zip(beads.ids, beads.rois, beads.reference, strict=True)
        for bead_id, (x0, y0, x1, y1), ref in rows:
            key = "selected" if bead_id in selected else "reference" if ref else "bead"
            groups[key].append(_rectangle(x0, y0, x1, y1))
            text = f"{bead_id}R" if ref else str(bead_id)
            label = pg.TextItem(text, color=_PENS[key].color(), anchor=(0, 1))
            label.setPos(float(x0), float(y0))
            label.setZValue(11)
            self.view.addItem(label)
            self._labels.append(label)
        for key, item in self._outlines.items():
            if groups[key]:
                xy = np.concatenate(groups[key])
                item.setData(xy[:, 0], xy[:, 1])
            else:
                item.setData([], [])

    def outline_points(self) -> int:
        """How many outline points are drawn (8 per ROI)."""
        xs = (item.getData()[0] for item in self._outlines.values())
        return sum(0 if x is None else len(x) for x in xs)

    # --- clicks ---------------------------------------------------------------------------
    def _on_click(self, event) -> None:
        if event.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        point = self.view.mapSceneToView(event.scenePos())
        if self.view.sceneBoundingRect().contains(event.scenePos()):
            event.accept()
            self.clicked.emit(point.x(), point.y(), event.modifiers())

    def widget_point(self, x: float, y: float) -> QtCore.QPoint:
        """Where pixel (x, y) of the image is in the graphics widget's viewport (for tests)."""
        scene = self.view.mapViewToScene(QtCore.QPointF(x, y))
        return self.graphics.mapFromScene(scene)


def _rectangle(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """The four edges of a pixel rectangle as point pairs (outer pixel boundaries)."""
    c = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)
    return c[[0, 1, 1, 2, 2, 3, 3, 0]]
