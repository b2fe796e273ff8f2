"""The mmcore focus-stage driver: MMCore's focus (stage) device, positions in nm."""

import logging
import math
from typing import Any, ClassVar

from hal._camera import Camera as _Camera
from hal._errors import DeviceError
from hal._focus import FocusStage as _FocusStage
from hal.mmcore._core import (
    MM_ERRORS,
    CoreAccessory,
    checked_limits,
    device_label,
    import_pymmcore,
    position_limits,
)
from hal.mmcore._settings import MMCoreFocusSettings

logger = logging.getLogger("hal.mmcore")


class FocusStage(CoreAccessory, _FocusStage):
    """A Micro-Manager focus stage; it runs hardware sequences where the device can (MMCore's
    stage sequences, stepped by the camera's trigger) unless ``use_sequences`` is off.

    Given ``camera=`` (an mmcore :class:`~hal.mmcore.Camera`), it drives that camera's CMMCore,
    which must be open first; alone, it loads ``config_file`` into a CMMCore of its own.

    Parameters
    ----------
    settings : mapping, optional
        See :class:`MMCoreFocusSettings`.
    camera : hal.mmcore.Camera, optional
        The camera whose CMMCore to share.
    """

    Settings: ClassVar[type[MMCoreFocusSettings]] = MMCoreFocusSettings
    settings: MMCoreFocusSettings

    def __init__(self, settings: Any = None, *, camera: _Camera | None = None) -> None:
        super().__init__(settings, camera=camera)
        self.label = ""
        self._limits = (-math.inf, math.inf)

    def _do_open(self) -> None:
        pymmcore = import_pymmcore()

        def setup(core: Any) -> None:
            self.label = device_label(core, self.settings.stage, core.getFocusDevice(),
                                      pymmcore.StageDevice, "focus stage")  # fmt: skip
            self._limits = self._read_limits(core)

        self._open_core("focus stage", setup)
        logger.info("opened MMCore focus stage %r, limits %s nm", self.label, self._limits)

    def _read_limits(self, core: Any) -> tuple[float, float]:
        lo, hi = position_limits(core, self.label)
        device = (1000.0 * lo, 1000.0 * hi)
        if self.settings.limits_nm is None and not all(map(math.isfinite, device)):
            logger.warning("focus stage %r publishes no limits: set limits_nm", self.label)
        return checked_limits(self.settings.limits_nm, device, f"focus stage {self.label!r}", "nm")

    def _do_move_to(self, z_nm: float) -> None:
        try:
            self.core.setPosition(self.label, z_nm / 1000.0)
        except MM_ERRORS as exc:
            raise DeviceError(
                f"focus stage {self.label!r} refused z = {z_nm:g} nm: {exc}"
            ) from None

    @property
    def position_nm(self) -> float:
        if self.core is None:
            raise DeviceError("mmcore focus stage is not open")
        return float(self.core.getPosition(self.label)) * 1000.0

    @property
    def limits_nm(self) -> tuple[float, float]:
        return self._limits

    def is_busy(self) -> bool:
        if self.core is None:
            return False
        return bool(self.core.deviceBusy(self.label))

    @property
    def sequence_max_length(self) -> int:
        core = self.core
        if core is None or not self.settings.use_sequences:
            return 0
        if not core.isStageSequenceable(self.label):
            return 0
        return int(core.getStageSequenceMaxLength(self.label))

    def _do_load_sequence(self, z_nm: list[float]) -> None:
        self._sequence_call("load", self.core.loadStageSequence, [z / 1000.0 for z in z_nm])

    def _do_start_sequence(self) -> None:
        self._sequence_call("start", self.core.startStageSequence)

    def _do_stop_sequence(self) -> None:
        self._sequence_call("stop", self.core.stopStageSequence)

    def _sequence_call(self, what: str, call: Any, *args: Any) -> None:
        try:
            call(self.label, *args)
        except MM_ERRORS as exc:
            msg = " ".join(str(exc).split())
            raise DeviceError(
                f"focus stage {self.label!r} failed to {what} its sequence: {msg}"
            ) from None
