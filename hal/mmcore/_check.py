"""Checking a Micro-Manager configuration the way a run loads it, acquiring nothing."""

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any, TypeVar

from hal._device import Device
from hal._errors import HalError, UnsupportedSettingError
from hal.mmcore._camera import Camera
from hal.mmcore._focus import FocusStage
from hal.mmcore._magnets import Magnets

D = TypeVar("D", bound=Device)


def check_configuration(
    camera: Mapping[str, Any] | None = None,
    focus_stage: Mapping[str, Any] | None = None,
    magnets: Mapping[str, Any] | None = None,
) -> None:
    """Open the given mmcore devices as a run does, then close them; no frame is taken and
    nothing moves.

    Loading the .cfg checks the adapters and their device interface version; opening checks
    the labels and device kinds, presets, properties and their allowed values, binning, ROI,
    exposure, pixel type, and the stages' limits and velocity property. The focus stage and
    the magnets share the camera's MMCore when a camera is given, as in a run.

    Parameters
    ----------
    camera, focus_stage, magnets : mapping, optional
        Settings of each mmcore device the config has.

    Raises
    ------
    UnsupportedSettingError
        Whatever a run would refuse or fail on at open, as one line naming the device.
    """
    with ExitStack() as stack:
        cam = None
        if camera is not None:
            cam = _opened(stack, "camera", lambda: Camera(camera))
        if focus_stage is not None:
            _opened(stack, "focus_stage", lambda: FocusStage(focus_stage, camera=cam))
        if magnets is not None:
            _opened(stack, "magnets", lambda: Magnets(magnets, camera=cam))


def _opened(stack: ExitStack, what: str, make: Callable[[], D]) -> D:
    """``make()``, opened and closed with ``stack``; its errors as one line naming ``what``."""
    try:
        device = make()
        stack.enter_context(device)  # returns the device itself: typed as its base class
        return device
    except HalError as exc:
        raise UnsupportedSettingError(f"{what}: {exc}") from None
