"""Lock controls: whether the run's Z-lock and XY-lock are on, their error and last correction,
and buttons that switch each on or off. Through the run's lock channel
(:class:`~magacq.pipeline.channels.lock_channel.LockControl`); the run records each switch as an
event."""

import math

from magacq.pipeline.channels.lock_channel import FAULT, ON, LockControl, LockError, LockState

from ._qt import QtWidgets

#: The locks: channel name, label.
LOCKS = (("z", "Z-lock"), ("xy", "XY-lock"))


def z_text(s: LockState) -> str:
    """The Z-lock's line: ``on · error +1.2 nm · last step -3.0 nm``, ``off`` or why it is off."""
    if s.z_state == FAULT:
        return "OFF: focus fault (see the run's log)"
    if s.z_state != ON:
        return "off"
    error = f"{s.z_error_nm:+.1f} nm" if math.isfinite(s.z_error_nm) else "–"
    last = f"{s.z_last_nm:+.1f} nm" if math.isfinite(s.z_last_nm) else "none yet"
    return f"on · error {error} · last step {last}"


def xy_text(s: LockState) -> str:
    """The XY-lock's line: ``on · off centre 0.8 px · 12 ROI moves, last bead 1 by (+2, 0) px``."""
    if s.xy_state != ON:
        return "off"
    error = f"{s.xy_error_px:.1f} px" if math.isfinite(s.xy_error_px) else "–"
    text = f"on · off centre {error} · {int(s.xy_moves)} ROI moves"
    if math.isfinite(s.xy_last_bead):
        text += (f", last bead {int(s.xy_last_bead)} by ({s.xy_last_dx_px:+.0f}, "
                 f"{s.xy_last_dy_px:+.0f}) px")  # fmt: skip
    return text


class LocksPanel(QtWidgets.QGroupBox):
    """The run's locks, each with a button that switches it.

    Parameters
    ----------
    control : LockControl
        The run's lock channel.
    """

    def __init__(self, control: LockControl, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("locks", parent)
        self.control = control
        self.state: LockState | None = None
        self.readout: dict[str, QtWidgets.QLabel] = {}
        self.buttons: dict[str, QtWidgets.QPushButton] = {}
        layout = QtWidgets.QGridLayout(self)
        for row, (lock, label) in enumerate(LOCKS):
            layout.addWidget(QtWidgets.QLabel(label), row, 0)
            self.readout[lock] = QtWidgets.QLabel("–")
            layout.addWidget(self.readout[lock], row, 1)
            button = QtWidgets.QPushButton("switch off")
            button.clicked.connect(lambda _=False, k=lock: self.toggle(k))
            button.setEnabled(False)  # until the run says the lock is there
            self.buttons[lock] = button
            layout.addWidget(button, row, 2)
        layout.setColumnStretch(1, 1)

    def is_on(self, lock: str) -> bool:
        """Whether ``lock`` was on at the lock thread's last update."""
        return self.state is not None and getattr(self.state, f"{lock}_state") == ON

    def toggle(self, lock: str) -> None:
        """Ask the run to switch ``lock`` the other way."""
        on = not self.is_on(lock)
        try:
            self.control.switch(lock, on)
        except LockError as exc:
            self.readout[lock].setText(str(exc))
            return
        self.readout[lock].setText(f"switching {'on' if on else 'off'}…")

    def refresh(self) -> None:
        """Show the locks as the run last published them."""
        state = self.control.state()
        if state is None or (self.state is not None and state.t == self.state.t):
            return
        self.state = state
        for lock, text in (("z", z_text), ("xy", xy_text)):
            present = math.isfinite(getattr(state, f"{lock}_state"))
            self.readout[lock].setText(text(state) if present else "not in this run")
            self.buttons[lock].setEnabled(present)
            self.buttons[lock].setText("switch off" if self.is_on(lock) else "switch on")


def locks_panel(namespace: str) -> LocksPanel | None:
    """Controls for the run's locks, or None when it has none."""
    try:
        return LocksPanel(LockControl(namespace))
    except LockError:
        return None
