"""Creating a CMMCore from a .cfg, and setting device properties with clear errors."""

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hal._errors import DeviceError, LibraryMissingError, UnsupportedSettingError

logger = logging.getLogger("hal.mmcore")

_INSTALL_HINT = "pip install 'magacq[mmcore]'"
#: What pymmcore raises for an MMCore error (SWIG maps CMMError codes onto these).
MM_ERRORS = (RuntimeError, OSError, ValueError, KeyError, IndexError)


def import_pymmcore() -> Any:
    """Import pymmcore, or raise LibraryMissingError saying how to install it."""
    try:
        import pymmcore
    except ImportError as exc:
        raise LibraryMissingError(f"pymmcore is not installed ({_INSTALL_HINT})") from exc
    return pymmcore


def missing_library() -> str | None:
    """Why pymmcore cannot be imported, or None."""
    try:
        import_pymmcore()
    except LibraryMissingError as exc:
        return str(exc)
    return None


def device_interface_version(pymmcore: Any) -> int:
    """The device interface version this pymmcore's MMCore loads (``Device API version N``)."""
    info = pymmcore.CMMCore().getAPIVersionInfo()
    for part in info.split(","):
        words = part.split()
        if words[:3] == ["Device", "API", "version"]:
            return int(words[3])
    raise DeviceError(f"cannot read the device interface version from {info!r}")


def load_core(mm_path: Sequence[Path], config_file: Path) -> Any:
    """A new CMMCore that searched ``mm_path`` for adapters and loaded ``config_file``.

    Raises
    ------
    DeviceError
        The .cfg failed to load: MMCore's own message, and a hint on a device interface
        version mismatch.
    """
    pymmcore = import_pymmcore()
    core = pymmcore.CMMCore()
    core.setDeviceAdapterSearchPaths([str(p) for p in mm_path])
    try:
        core.loadSystemConfiguration(str(config_file))
    except MM_ERRORS as exc:
        core.unloadAllDevices()
        msg = " ".join(str(exc).split())
        hint = ""
        if "interface version" in msg:
            hint = (
                f" (pymmcore {pymmcore.__version__} loads device interface version "
                f"{device_interface_version(pymmcore)}: rebuild the adapter against that "
                "Micro-Manager version, or install the matching pymmcore)"
            )
        raise DeviceError(
            f"Micro-Manager failed to load {config_file} (adapter search path "
            f"{', '.join(map(str, mm_path))}): {msg}{hint}"
        ) from None
    return core


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def set_property(core: Any, label: str, name: str, value: Any) -> None:
    """Set ``label``'s property ``name`` after checking it exists, is writable and accepts value.

    Raises
    ------
    UnsupportedSettingError
        Unknown property (lists the device's properties), read-only, a value outside the allowed
        values (lists them) or the limits, or a non-number for a numeric property.
    DeviceError
        The device refused the value.
    """
    import pymmcore

    if label not in core.getLoadedDevices():
        raise UnsupportedSettingError(
            f"no device {label!r} is loaded; loaded devices: {', '.join(core.getLoadedDevices())}"
        )
    if not core.hasProperty(label, name):
        names = ", ".join(core.getDevicePropertyNames(label))
        raise UnsupportedSettingError(
            f"device {label!r} has no property {name!r}; its properties: {names}"
        )
    if core.isPropertyReadOnly(label, name):
        raise UnsupportedSettingError(f"property {label}.{name} is read-only")
    text = _format(value)
    allowed = tuple(core.getAllowedPropertyValues(label, name))
    if allowed and text not in allowed:
        raise UnsupportedSettingError(
            f"{label}.{name} = {text!r} is not allowed; allowed values: {', '.join(allowed)}"
        )
    ptype = core.getPropertyType(label, name)
    if ptype in (pymmcore.Integer, pymmcore.Float):
        try:
            number = float(text)
        except ValueError:
            raise UnsupportedSettingError(f"{label}.{name} takes a number, got {text!r}") from None
        if ptype == pymmcore.Integer and not number.is_integer():
            raise UnsupportedSettingError(f"{label}.{name} takes an integer, got {text!r}")
        if core.hasPropertyLimits(label, name):
            lo = core.getPropertyLowerLimit(label, name)
            hi = core.getPropertyUpperLimit(label, name)
            if not lo <= number <= hi:
                raise UnsupportedSettingError(
                    f"{label}.{name} = {text} is outside its limits [{lo:g}, {hi:g}]"
                )
    try:
        core.setProperty(label, name, text)
    except MM_ERRORS as exc:
        raise DeviceError(f"{label}.{name} = {text!r} refused: {exc}") from None
    logger.debug("set %s.%s = %s", label, name, text)


#: Names of MMCore's device types, for "a stage, not a camera".
_TYPE_NAMES = {
    "CameraDevice": "a camera",
    "StageDevice": "a stage",
    "XYStageDevice": "an XY stage",
    "ShutterDevice": "a shutter",
    "StateDevice": "a state device",
    "GenericDevice": "a generic device",
    "AutoFocusDevice": "an autofocus",
    "HubDevice": "a hub",
    "SignalIODevice": "a signal I/O device",
}


def _type_name(core: Any, label: str) -> str:
    import pymmcore

    kind = core.getDeviceType(label)
    names = (w for attr, w in _TYPE_NAMES.items() if getattr(pymmcore, attr, None) == kind)
    return next(names, "a device of another kind")


def device_label(core: Any, wanted: str | None, current: str, device_type: Any, kind: str) -> str:
    """``wanted`` if it is a loaded device of ``device_type``, else the core's ``current`` one.

    Raises
    ------
    UnsupportedSettingError
        No such device, or one of another kind (both messages list the right ones).
    """
    loaded = tuple(core.getLoadedDevicesOfType(device_type))
    choices = f"loaded {kind} devices: {', '.join(loaded) or '(none)'}"
    label = wanted or current
    if not label:
        raise UnsupportedSettingError(
            f"the config sets no {kind} device; name one of: {', '.join(loaded) or '(none)'}"
        )
    if label in loaded:
        return label
    if label in core.getLoadedDevices():
        raise UnsupportedSettingError(
            f"{label!r} is {_type_name(core, label)}, not a {kind} device; {choices}"
        )
    raise UnsupportedSettingError(f"no {kind} device {label!r} is loaded; {choices}")


def apply_presets(core: Any, presets: Mapping[str, str]) -> None:
    """Apply config-group presets (``{group: preset}``) and wait for the devices to settle.

    Raises
    ------
    UnsupportedSettingError
        No such group or preset (lists the config's).
    DeviceError
        A device refused a setting of the preset.
    """
    groups = tuple(core.getAvailableConfigGroups())
    for group, preset in presets.items():
        if group not in groups:
            raise UnsupportedSettingError(
                f"no config group {group!r}; the config's groups: {', '.join(groups) or '(none)'}"
            )
        names = tuple(core.getAvailableConfigs(group))
        if preset not in names:
            raise UnsupportedSettingError(
                f"config group {group!r} has no preset {preset!r}; its presets: {', '.join(names)}"
            )
        try:
            core.setConfig(group, preset)
            core.waitForConfig(group, preset)
        except MM_ERRORS as exc:
            msg = " ".join(str(exc).split())
            raise DeviceError(f"preset {group}: {preset} refused: {msg}") from None
        logger.debug("applied preset %s: %s", group, preset)


class CoreAccessory:
    """What the mmcore focus stage and magnets share: they drive their camera's CMMCore (given
    ``camera=``, open first), else one of their own loaded from ``settings.config_file`` and
    unloaded on close."""

    camera: Any
    settings: Any
    core: Any = None
    _owns_core = False

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return missing_library()

    def _open_core(self, what: str, setup: Callable[[Any], None]) -> None:
        """Take the camera's core or load one, then ``setup(core)``; the core is kept only if
        that succeeds (one loaded here is unloaded again).

        Raises
        ------
        DeviceError
            The camera is not open.
        UnsupportedSettingError
            No camera and no ``config_file``.
        """
        s = self.settings
        if self.camera is not None:
            core = getattr(self.camera, "core", None)
            if core is None:
                raise DeviceError(
                    f"the mmcore {what} shares its camera's MMCore: open the camera first"
                )
            owned = False
        elif s.config_file is None:
            raise UnsupportedSettingError(
                f"mmcore {what}: config_file (and mm_path) needed without a camera"
            )
        else:
            core, owned = load_core(s.mm_path, s.config_file), True
        try:
            setup(core)
        except BaseException:
            if owned:
                core.unloadAllDevices()
            raise
        self.core, self._owns_core = core, owned

    def _do_close(self) -> None:
        if self._owns_core and self.core is not None:
            self.core.unloadAllDevices()
        self.core = None


def checked_limits(
    given: tuple[float, float] | None, device: tuple[float, float], what: str, unit: str
) -> tuple[float, float]:
    """The limits from the settings (``given``) inside the ``device``'s own, else the device's.

    Raises
    ------
    UnsupportedSettingError
        Empty limits, or given limits that reach beyond the device's.
    """
    lo, hi = device if given is None else given
    if not lo < hi:
        raise UnsupportedSettingError(f"{what} limits [{lo:g}, {hi:g}] {unit} are empty")
    dlo, dhi = device
    slack = 1e-9 * max(abs(lo), abs(hi), 1.0)  # unit conversions round
    if not (dlo - slack <= lo and hi <= dhi + slack):
        raise UnsupportedSettingError(
            f"{what} limits [{lo:g}, {hi:g}] {unit} reach beyond the device's own "
            f"[{dlo:g}, {dhi:g}] {unit}"
        )
    return (float(lo), float(hi))


def position_limits(core: Any, label: str) -> tuple[float, float]:
    """Limits of ``label``'s ``Position`` property (stage units), else ``(-inf, inf)``."""
    if core.hasProperty(label, "Position") and core.hasPropertyLimits(label, "Position"):
        return (
            float(core.getPropertyLowerLimit(label, "Position")),
            float(core.getPropertyUpperLimit(label, "Position")),
        )
    return (-math.inf, math.inf)
