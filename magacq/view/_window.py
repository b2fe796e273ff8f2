"""The viewer's main window: image, traces, profile and status, refreshed by one timer."""

import logging

from magacq.pipeline.channels.motor_channel import MotorControl, MotorError

from ._cpu import IdleCpu
from ._force_panel import ForcePanel
from ._history import TrackHistory
from ._image_panel import ImagePanel
from ._locks_panel import locks_panel
from ._magnets_panel import MagnetsPanel
from ._profile_panel import ProfilePanel
from ._qt import QtCore, QtWidgets
from ._source import RunEnded, RunSource
from ._traces_panel import TracesPanel

log = logging.getLogger("magacq.view")

#: One timer drives the window. Each tick shows the newest frame, if a new one came (so the image
#: refreshes at up to 30 Hz whatever the camera's rate); every ``DATA_EVERY``-th tick also
#: refreshes the ROIs, traces, profile and status (5 Hz: repainting the trace plots costs far
#: more than a frame, and a slower scroll shows the same).
TICK_MS = 33
DATA_EVERY = 6
#: When the machine has less than ``BUSY_IDLE_CORES`` of CPU idle (the run takes all it can get:
#: a camera free-running or paced near the machine's capacity), the window refreshes less, image
#: every ``SLOW_IMAGE_EVERY``-th tick (5 Hz) and data every ``SLOW_DATA_EVERY``-th (1 Hz), so
#: as to take little from the run; it is back to normal once ``CALM_IDLE_CORES`` are idle.
#: Checked every ``CPU_CHECK_TICKS`` ticks (1 s).
BUSY_IDLE_CORES = 0.25
CALM_IDLE_CORES = 0.6
SLOW_IMAGE_EVERY = 6
SLOW_DATA_EVERY = 30
CPU_CHECK_TICKS = 30
DEFAULT_ROI_SIZE = 32  # px, for a ROI added by clicking when the run has none to copy


class ViewerWindow(QtWidgets.QMainWindow):
    """A live window onto one run; it only reads, except for the bead ROIs the user edits.

    Parameters
    ----------
    source : RunSource
        The attached run. The window closes it when the run ends or the window closes.
    """

    def __init__(self, source: RunSource, window_s: float = 30.0) -> None:
        super().__init__()
        self.source = source
        self.setWindowTitle(f"magacq view — run {source.namespace}")
        self.history = TrackHistory(window_s)
        self.image_panel = ImagePanel()
        self.traces = TracesPanel(self.history)
        self.profile = ProfilePanel()
        self.magnets = _magnets_panel(source.namespace)  # None: the run has no magnets
        self.locks = locks_panel(source.namespace)  # None: the run has no locks
        self.selected: list[int] = []
        self.ended: str | None = None
        self._beads_version = -1
        self._beads = source.beads()
        self._frame_shown = -1
        self._status_text = ""

        self.banner = QtWidgets.QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(
            "background: #7a1f1f; color: white; font-weight: bold; padding: 6px"
        )
        self.banner.hide()
        right = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        right.addWidget(self.traces)
        right.addWidget(self.profile)
        right.setSizes([500, 300])
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(self.image_panel)
        split.addWidget(right)
        split.setSizes([600, 600])
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.addWidget(self.banner)
        layout.addWidget(split, 1)
        if self.magnets is not None:
            layout.addWidget(self.magnets)
        if self.locks is not None:
            layout.addWidget(self.locks)
        self.setCentralWidget(central)
        self.status_label = QtWidgets.QLabel("attaching…")
        self.statusBar().addWidget(self.status_label, 1)
        self.force = ForcePanel()  # the selected bead's live force (a run with live_force)
        self.statusBar().addPermanentWidget(self.force)
        self.resize(1280, 800)

        self.image_panel.clicked.connect(self._on_image_click)
        self.profile.set_zlut(None)
        self._ticks = 0
        self._idle = IdleCpu()
        self.slowed = False  # refreshing less: the machine has no CPU to spare
        self.busy_idle_cores, self.calm_idle_cores = BUSY_IDLE_CORES, CALM_IDLE_CORES
        self._timer = QtCore.QTimer(self, interval=TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    # --- periodic updates -----------------------------------------------------------------
    def _tick(self) -> None:
        self._ticks += 1
        if self._ticks % CPU_CHECK_TICKS == 0:
            self._check_cpu()
        image_every, data_every = (
            (SLOW_IMAGE_EVERY, SLOW_DATA_EVERY) if self.slowed else (1, DATA_EVERY)
        )
        if self._ticks % data_every == 1:
            self.update_data()
        if self._ticks % image_every == 0:
            self.update_image()

    def _check_cpu(self) -> None:
        idle = self._idle.cores()
        if idle is None:
            return
        if not self.slowed and idle < self.busy_idle_cores:
            self.slowed = True
            log.info("machine busy (%.2f cores idle): refreshing less", idle)
        elif self.slowed and idle > self.calm_idle_cores:
            self.slowed = False

    def update_image(self) -> None:
        """Show the newest frame (lock-free read), if there is a new one."""
        self._guarded(self._update_image)

    def update_data(self) -> None:
        """Refresh ROIs, traces, profile and status; notice the run ending."""
        self._guarded(self._update_data)

    def _update_image(self) -> None:
        if self.source.frames_written() == self._frame_shown:
            return  # no new frame: neither copy nor repaint
        latest = self.source.latest_image()
        if latest is not None and latest[0] != self._frame_shown:
            self._frame_shown = latest[0]
            self.image_panel.show_image(*latest)

    def _update_data(self) -> None:
        if not self.source.alive():
            raise RunEnded(f"the run {self.source.namespace!r} has ended")
        beads = self.source.beads()
        if beads.version != self._beads_version:
            self._beads = beads
            self._beads_version = beads.version
            present = set(int(i) for i in beads.ids)
            self.selected = [b for b in self.selected if b in present]
            if not self.selected and len(beads.ids):
                self._select([int(beads.ids[0])])
            self.traces.set_reference_choices(beads.ids, beads.reference)
            self._redraw_beads()
        start = self.source.run_start()
        self.traces.set_run_start(start)
        self.history.extend(self.source.new_tracks())
        self.traces.refresh()
        primary = self.selected[0] if self.selected else None
        self.profile.show_profile(self.source.live_profile(), primary, start)
        self.force.show_force(self.source.forces(), primary)
        if self.magnets is not None:
            self.magnets.refresh()
        if self.locks is not None:
            self.locks.refresh()
        text = self.source.status().describe() + f" · beads {len(beads.ids)}"
        if self.slowed:
            text += " · display slowed: CPU busy"
        if text != self._status_text:
            self._status_text = text
            self.status_label.setText(text)

    def _guarded(self, update) -> None:
        if self.ended is not None:
            return
        try:
            update()
        except RunEnded as exc:
            self.show_ended(str(exc))
        except Exception as exc:  # a run vanishing mid-read must not take the window down
            log.debug("viewer update failed", exc_info=True)
            if self.source.alive():
                raise
            self.show_ended(f"the run {self.source.namespace!r} has ended ({exc})")

    def show_ended(self, why: str) -> None:
        """Stop reading, release the run's buffers and say so; the last data stays on screen."""
        self.ended = why
        self._timer.stop()
        self._detach()
        self.banner.setText(
            f"{why[0].upper()}{why[1:]}. What is shown is its last data; "
            "close this window when done."
        )
        self.banner.show()
        self.status_label.setText(f"run ended · {self.status_label.text()}")

    # --- selection and ROI editing --------------------------------------------------------
    def bead_at(self, x: float, y: float) -> int | None:
        """Id of the bead whose ROI contains pixel (x, y), or None."""
        for bead_id, (x0, y0, x1, y1) in zip(self._beads.ids, self._beads.rois, strict=True):
            if x0 <= x < x1 and y0 <= y < y1:
                return int(bead_id)
        return None

    def _on_image_click(self, x: float, y: float, modifiers) -> None:
        if self.ended is not None:
            return
        mods = QtCore.Qt.KeyboardModifier
        bead = self.bead_at(x, y)
        if modifiers & mods.ShiftModifier:
            if bead is None:
                self.add_bead(x, y)
            else:
                self.remove_bead(bead)
        elif bead is not None and modifiers & mods.ControlModifier:
            others = [b for b in self.selected if b != bead]
            self._select(others if bead in self.selected else [*self.selected, bead])
        elif bead is not None:
            self._select([bead])

    def add_bead(self, x: float, y: float) -> int:
        """Add a bead ROI of the run's ROI size centred at pixel (x, y); select it; its id."""
        bead = self.source.add_bead(x, y, self.source.roi_size(DEFAULT_ROI_SIZE) // 2)
        self._beads_version = -1  # re-read the ROIs now
        self.selected = [bead]
        self.update_data()
        self._select([bead])  # and ask the trackers for its live profile
        return bead

    def remove_bead(self, bead: int) -> None:
        """Remove bead ``bead``'s ROI from the run."""
        self.source.remove_bead(bead)
        self._beads_version = -1
        self.update_data()

    def _select(self, beads: list[int]) -> None:
        self.selected = beads
        if beads:
            self.source.select_bead(beads[0])
            self.profile.set_zlut(self.source.zlut(beads[0]))
        self.traces.set_selected(beads)
        self._redraw_beads()

    def _redraw_beads(self) -> None:
        self.image_panel.show_beads(self._beads, set(self.selected))

    # --- teardown -------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """Stop the timer and detach; the run itself is left untouched."""
        self._timer.stop()
        self._detach()
        super().closeEvent(event)

    def _detach(self) -> None:
        self.source.close()
        if self.magnets is not None:
            self.magnets.control.close()
            self.magnets.setEnabled(False)
        if self.locks is not None:
            self.locks.control.close()
            self.locks.setEnabled(False)


def _magnets_panel(namespace: str) -> MagnetsPanel | None:
    """Controls for the run's magnets, or None when it has none."""
    try:
        control = MotorControl(namespace, by="view")
    except MotorError:
        return None
    if not {"height", "rotation"} & set(control.limits()):
        control.close()
        return None
    return MagnetsPanel(control)
