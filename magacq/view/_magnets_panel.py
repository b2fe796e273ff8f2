"""Magnet controls: where the run's magnets are, spin boxes to send them somewhere, step
buttons, stop. Commands go through the run's motor channel (:class:`MotorControl`); the moves
are recorded by the run like any other."""

import math

from magacq.pipeline.channels.motor_channel import MotorControl, MotorError, Status

from ._qt import QtWidgets

#: Axis, unit, step of the step buttons, spin-box decimals.
AXES = (("height", "mm", 0.1, 3), ("rotation", "turns", 1.0, 2))


class MagnetsPanel(QtWidgets.QGroupBox):
    """Height and rotation of a run's magnets, with controls that move them.

    Parameters
    ----------
    control : MotorControl
        The run's motor channel; the panel shows only the axes the run's magnets have.
    """

    def __init__(self, control: MotorControl, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("magnets", parent)
        self.control = control
        limits = control.limits()
        self.axes = [a for a in AXES if a[0] in limits]
        self.readout: dict[str, QtWidgets.QLabel] = {}
        self.target: dict[str, QtWidgets.QDoubleSpinBox] = {}
        self.buttons: dict[str, QtWidgets.QPushButton] = {}
        self.last_command: int | None = None
        self.edited: set[str] = set()  # target boxes the user changed: they stop following
        layout = QtWidgets.QGridLayout(self)
        for row, (axis, unit, step, decimals) in enumerate(self.axes):
            lim = limits[axis]
            layout.addWidget(QtWidgets.QLabel(axis), row, 0)
            self.readout[axis] = QtWidgets.QLabel("–")
            layout.addWidget(self.readout[axis], row, 1)
            box = QtWidgets.QDoubleSpinBox(decimals=decimals, suffix=f" {unit}")
            box.setRange(lim.low, lim.high)
            box.setSingleStep(step)
            box.setValue(lim.start)
            box.valueChanged.connect(lambda _=0.0, a=axis: self.edited.add(a))
            self.target[axis] = box
            layout.addWidget(box, row, 2)
            # mypy infers no type for a lambda binding loop values as defaults:
            for col, (name, act) in enumerate(
                (("go", lambda _=False, a=axis: self.move_to(a, self.target[a].value())),
                 ("−", lambda _=False, a=axis, s=step: self.move_by(a, -s)),  # type: ignore[misc]
                 ("+", lambda _=False, a=axis, s=step: self.move_by(a, s))),  # type: ignore[misc]
                start=3,
            ):  # fmt: skip
                button = QtWidgets.QPushButton(name)
                button.clicked.connect(act)
                self.buttons[f"{axis} {name}"] = button
                layout.addWidget(button, row, col)
        self.stop_button = QtWidgets.QPushButton("stop")
        self.stop_button.clicked.connect(self.stop)
        layout.addWidget(self.stop_button, len(self.axes), 0)
        self.state = QtWidgets.QLabel("")
        layout.addWidget(self.state, len(self.axes), 1, 1, 5)

    def _sent(self, send) -> None:
        try:
            self.last_command = send()
            self.state.setText("moving…")
        except MotorError as exc:
            self.state.setText(str(exc))

    def move_to(self, axis: str, value: float) -> None:
        self.edited.discard(axis)  # sent: the box follows the magnets again
        self._sent(lambda: self.control.move_to(axis, value))

    def move_by(self, axis: str, delta: float) -> None:
        self._sent(lambda: self.control.move_by(axis, delta))

    def stop(self) -> None:
        self._sent(self.control.stop)

    def refresh(self) -> None:
        """Show where the magnets are (the target boxes too, unless the user is editing one)
        and how the last command ended."""
        _, height, rotation, _ = self.control.position()
        for axis, unit, _, decimals in self.axes:
            value = height if axis == "height" else rotation
            text = f"{value:.{decimals}f} {unit}" if math.isfinite(value) else "–"
            self.readout[axis].setText(text)
            box = self.target[axis]
            if math.isfinite(value) and axis not in self.edited and not box.hasFocus():
                box.blockSignals(True)  # not an edit of the user's
                box.setValue(value)
                box.blockSignals(False)
        if self.last_command is not None:
            status = self.control.status(self.last_command)
            if status is not None:
                self.state.setText("arrived" if status is Status.DONE else status.name.lower())
