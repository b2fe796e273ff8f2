"""The driver registry: drivers found by entry point (group ``magacq.drivers``) or by path.

A driver entry point names a module exposing one or more of ``Camera``, ``FocusStage`` and
``Magnets`` (subclasses of hal's interfaces): the device kinds it provides. Modules are imported
only when a driver is listed or asked for; a driver that fails to import is reported by
:func:`list_drivers`, never raised from it.
"""

import importlib
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import TypeVar

from hal._camera import Camera
from hal._device import Device
from hal._errors import DriverNotFoundError, LibraryMissingError
from hal._focus import FocusStage
from hal._magnets import Magnets

logger = logging.getLogger("hal")

GROUP = "magacq.drivers"
D = TypeVar("D", bound=Device)
#: Device kinds: the class name a driver module exposes, and the interface it subclasses.
KINDS: dict[str, tuple[str, type[Device]]] = {
    "camera": ("Camera", Camera),
    "focus_stage": ("FocusStage", FocusStage),
    "magnets": ("Magnets", Magnets),
}


@dataclass(frozen=True)
class DriverInfo:
    """What :func:`list_drivers` knows of one driver.

    Attributes
    ----------
    name : str
        Entry-point name.
    target : str
        What the entry point names (a module, or ``module:attr``).
    kinds : tuple of str
        The device kinds the module provides (keys of :data:`KINDS`, in that order).
    usable : bool
        Whether it imports and its vendor library is present.
    reason : str
        Why it is not usable ("" when it is).
    """

    name: str
    target: str
    kinds: tuple[str, ...]
    usable: bool
    reason: str

    @property
    def has_camera(self) -> bool:
        return "camera" in self.kinds

    @property
    def has_focus_stage(self) -> bool:
        return "focus_stage" in self.kinds

    @property
    def has_magnets(self) -> bool:
        return "magnets" in self.kinds


def _entry_points() -> dict[str, str]:
    eps: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        eps.setdefault(ep.name, ep.value)
    return eps


def _import(target: str) -> ModuleType:
    module, _, _attr = target.partition(":")
    return importlib.import_module(module.strip())


def _driver_class(module: ModuleType, attr: str, base: type[D]) -> type[D] | None:
    cls = getattr(module, attr, None)
    return cls if isinstance(cls, type) and issubclass(cls, base) else None


def list_drivers() -> list[DriverInfo]:
    """Every registered driver, sorted by name, with whether it is usable here and why not."""
    infos = []
    for name, target in sorted(_entry_points().items()):
        try:
            module = _import(target)
        except ImportError as exc:
            reason = f"{exc.name} not installed" if exc.name else str(exc)
            infos.append(DriverInfo(name, target, (), False, reason))
            continue
        except Exception as exc:  # a broken plugin is a report, not a crash
            reason = f"import failed: {type(exc).__name__}: {exc}"
            infos.append(DriverInfo(name, target, (), False, reason))
            continue
        classes = {
            kind: cls
            for kind, (attr, base) in KINDS.items()
            if (cls := _driver_class(module, attr, base)) is not None
        }
        reasons = []
        if not classes:
            names = ", ".join(attr for attr, _ in KINDS.values())
            reasons.append(f"{target} exposes none of {names}")
        for cls in classes.values():
            try:
                why = cls.unavailable_reason()
            except Exception as exc:
                why = f"unavailable_reason() failed: {type(exc).__name__}: {exc}"
            if why and why not in reasons:
                reasons.append(why)
        infos.append(DriverInfo(name, target, tuple(classes), not reasons, "; ".join(reasons)))
    return infos


def _resolve(name_or_path: str, attr: str, base: type[D]) -> type[D]:
    eps = _entry_points()
    if ":" in name_or_path and name_or_path not in eps:
        module_name, _, cls_name = name_or_path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise DriverNotFoundError(
                    f"no module {module_name!r} (from {name_or_path!r})"
                ) from None
            raise LibraryMissingError(f"{name_or_path}: {exc.name} not installed") from exc
        cls = getattr(module, cls_name, None)
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise DriverNotFoundError(f"{name_or_path!r} is not a {base.__name__} class")
    elif name_or_path in eps:
        target = eps[name_or_path]
        try:
            module = _import(target)
        except ImportError as exc:
            raise LibraryMissingError(
                f"driver {name_or_path!r}: {exc.name or exc} not installed"
            ) from exc
        cls = _driver_class(module, attr, base)
        if cls is None:
            raise DriverNotFoundError(f"driver {name_or_path!r} ({target}) has no {attr}")
    else:
        known = ", ".join(sorted(eps)) or "(none)"
        raise DriverNotFoundError(
            f"no driver {name_or_path!r}; known drivers: {known} (or give a module:Class path)"
        )
    why = cls.unavailable_reason()
    if why:
        raise LibraryMissingError(f"driver {name_or_path!r}: {why}")
    return cls


def camera_class(name_or_path: str) -> type[Camera]:
    """The Camera class of a registered driver name or a ``package.module:Class`` path.

    Raises
    ------
    DriverNotFoundError
        Unknown name (the message lists the known ones) or a path that does not resolve.
    LibraryMissingError
        The driver's vendor library is not installed.
    """
    # an interface class is what is looked up (mypy asks a concrete one: python/mypy#4717)
    return _resolve(name_or_path, "Camera", Camera)  # type: ignore[type-abstract]


def focus_stage_class(name_or_path: str) -> type[FocusStage]:
    """The FocusStage class of a registered driver name or a ``package.module:Class`` path.

    Raises
    ------
    DriverNotFoundError, LibraryMissingError
        As :func:`camera_class`.
    """
    # an interface class is what is looked up (mypy asks a concrete one: python/mypy#4717)
    return _resolve(name_or_path, "FocusStage", FocusStage)  # type: ignore[type-abstract]


def magnets_class(name_or_path: str) -> type[Magnets]:
    """The Magnets class of a registered driver name or a ``package.module:Class`` path.

    Raises
    ------
    DriverNotFoundError, LibraryMissingError
        As :func:`camera_class`.
    """
    # an interface class is what is looked up (mypy asks a concrete one: python/mypy#4717)
    return _resolve(name_or_path, "Magnets", Magnets)  # type: ignore[type-abstract]
