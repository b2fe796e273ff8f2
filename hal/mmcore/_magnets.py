"""The mmcore magnets driver: the magnets' height and rotation motors as Micro-Manager Stages."""

import logging
import math
from typing import Any, ClassVar

from hal._camera import Camera as _Camera
from hal._errors import DeviceError, UnsupportedSettingError
from hal._magnets import UNITS, Axis
from hal._magnets import Magnets as _Magnets
from hal.mmcore._core import (
    MM_ERRORS,
    CoreAccessory,
    checked_limits,
    device_label,
    import_pymmcore,
    position_limits,
    set_property,
)
from hal.mmcore._settings import MMCoreMagnetsSettings

logger = logging.getLogger("hal.mmcore")


class _Stage:
    """One magnet axis on a Stage device: its label and the unit conversion."""

    def __init__(self, label: str, units_per_unit: float, offset: float) -> None:
        self.label, self.scale, self.offset = label, units_per_unit, offset

    def to_stage(self, x: float) -> float:
        return (x - self.offset) * self.scale

    def from_stage(self, u: float) -> float:
        return self.offset + u / self.scale


class Magnets(CoreAccessory, _Magnets):
    """Magnets whose height and/or rotation motor is a Micro-Manager Stage device.

    Given ``camera=`` (an mmcore :class:`~hal.mmcore.Camera`), it drives that camera's
    CMMCore, which must be open first; alone, it loads ``config_file`` into its own.

    Parameters
    ----------
    settings : mapping, optional
        See :class:`MMCoreMagnetsSettings`.
    camera : hal.mmcore.Camera, optional
        The camera whose CMMCore to share.
    """

    Settings: ClassVar[type[MMCoreMagnetsSettings]] = MMCoreMagnetsSettings
    settings: MMCoreMagnetsSettings

    def __init__(self, settings: Any = None, *, camera: _Camera | None = None) -> None:
        super().__init__(settings, camera=camera)
        self._stages: dict[str, _Stage] = {}
        self._limits: dict[str, tuple[float, float]] = {}

    @property
    def axes(self) -> tuple[Axis, ...]:
        s = self.settings
        stages: tuple[tuple[Axis, str | None], ...] = (
            ("height", s.height_stage),
            ("rotation", s.rotation_stage),
        )
        return tuple(a for a, label in stages if label)

    def _do_open(self) -> None:
        pymmcore = import_pymmcore()
        s = self.settings

        def setup(core: Any) -> None:
            for axis in self.axes:
                wanted = s.height_stage if axis == "height" else s.rotation_stage
                label = device_label(core, wanted, "", pymmcore.StageDevice, f"magnet {axis}")
                stage = (
                    _Stage(label, s.height_units_per_mm, s.height_offset_mm)
                    if axis == "height"
                    else _Stage(label, s.rotation_units_per_turn, s.rotation_offset_turns)
                )
                self._stages[axis] = stage
                self._limits[axis] = self._read_limits(core, axis, stage)
                if s.velocity_property and not core.hasProperty(label, s.velocity_property):
                    raise UnsupportedSettingError(
                        f"magnet {axis} stage {label!r} has no property {s.velocity_property!r}"
                    )

        self._open_core("magnets", setup)
        logger.info(
            "opened MMCore magnets %s",
            ", ".join(f"{a} on {st.label!r} {self._limits[a]}" for a, st in self._stages.items()),
        )

    def _read_limits(self, core: Any, axis: Axis, stage: _Stage) -> tuple[float, float]:
        s = self.settings
        given = s.height_limits_mm if axis == "height" else s.rotation_limits_turns
        lo, hi = sorted(stage.from_stage(u) for u in position_limits(core, stage.label))
        what = f"magnet {axis} stage {stage.label!r}"
        return checked_limits(given, (lo, hi), what, UNITS[axis])

    def _do_close(self) -> None:
        super()._do_close()
        self._stages.clear()

    def _do_limits(self, axis: Axis) -> tuple[float, float]:
        self._require_open()
        return self._limits[axis]

    def _do_max_velocity(self, axis: Axis) -> float:
        prop = self.settings.velocity_property
        label = self._stages[axis].label
        if prop is None:
            raise UnsupportedSettingError(
                f"magnet {axis} stage {label!r} takes no velocity: the magnets' settings name "
                "no velocity_property (the stages' velocity property, if they have one)"
            )
        if self.core.hasPropertyLimits(label, prop):
            return self.core.getPropertyUpperLimit(label, prop) / abs(self._stages[axis].scale)
        return math.inf

    def _do_move_to(self, axis: Axis, target: float, velocity: float | None) -> None:
        stage = self._stages[axis]
        if velocity is not None:
            prop = self.settings.velocity_property
            assert prop is not None  # _do_max_velocity refused the move otherwise
            set_property(self.core, stage.label, prop, velocity * abs(stage.scale))
        try:
            self.core.setPosition(stage.label, stage.to_stage(target))
        except MM_ERRORS as exc:
            msg = " ".join(str(exc).split())
            raise DeviceError(
                f"magnet {axis} stage {stage.label!r} refused {target:g}: {msg}"
            ) from None

    def _do_position(self, axis: Axis) -> float:
        stage = self._stages[axis]
        try:
            return stage.from_stage(float(self.core.getPosition(stage.label)))
        except MM_ERRORS as exc:
            raise DeviceError(f"magnet {axis} stage {stage.label!r}: {exc}") from None

    def _do_is_busy(self, axis: Axis) -> bool:
        return bool(self.core.deviceBusy(self._stages[axis].label))

    def _do_stop(self) -> None:
        for axis, stage in self._stages.items():
            try:
                self.core.stop(stage.label)
            except MM_ERRORS as exc:
                raise DeviceError(
                    f"magnet {axis} stage {stage.label!r} did not stop: {exc}"
                ) from None
