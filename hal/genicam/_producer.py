"""Finding GenTL producers (.cti files) and sharing one harvesters ``Harvester`` per producer set.

A GenTL producer is a shared library loaded once per process: a second ``Harvester`` over the
same .cti sees no devices. So every camera of this process that names the same producers shares
one Harvester, kept alive while any of them is open.
"""

import importlib
import importlib.util
import logging
import os
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from hal._errors import DeviceError, LibraryMissingError

logger = logging.getLogger("hal.genicam")

#: The GenTL standard's variable: directories holding producer .cti files, os.pathsep-separated.
GENTL_PATH_VAR = "GENICAM_GENTL64_PATH"
#: Producers the ``genicam`` wheel may ship (1.6.0: viky.cti; 1.5.0: TLSimu.cti).
BUNDLED_PRODUCERS = ("viky.cti", "TLSimu.cti")


def vendor_modules() -> tuple[ModuleType, ModuleType]:
    """Import harvesters.core and genicam.gentl, or explain what to install.

    Raises
    ------
    LibraryMissingError
        harvesters or genicam is not installed.
    """
    mods = []
    for name, dist in (("harvesters.core", "harvesters"), ("genicam.gentl", "genicam")):
        try:
            mods.append(importlib.import_module(name))
        except ImportError as exc:
            raise LibraryMissingError(
                f"the genicam driver needs {dist!r} ({exc}); install it with "
                "`pip install 'magacq[genicam]'`"
            ) from None
    return mods[0], mods[1]


def missing_library() -> str | None:
    """Name the vendor library that is not installed, without importing either; None if both are."""
    for dist in ("harvesters", "genicam"):
        try:
            if importlib.util.find_spec(dist) is None:
                return dist
        except (ImportError, ValueError):  # blocked in sys.modules, or a broken install
            return dist
    return None


def bundled_producer() -> Path | None:
    """The simulated producer shipped inside the ``genicam`` wheel, if that wheel has one."""
    try:
        spec = importlib.util.find_spec("genicam")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for name in BUNDLED_PRODUCERS:
            if (Path(folder) / name).is_file():
                return Path(folder) / name
    return None


def default_cti_files() -> list[Path]:
    """Producers to use when the settings name none.

    Every ``*.cti`` in the directories of ``GENICAM_GENTL64_PATH`` when that variable is set;
    otherwise the simulated producer bundled in the ``genicam`` wheel, if present; else none.
    """
    value = os.environ.get(GENTL_PATH_VAR, "")
    if value.strip():
        found: list[Path] = []
        for entry in filter(None, value.split(os.pathsep)):
            p = Path(entry)
            found += sorted(p.glob("*.cti")) if p.is_dir() else [p] if p.suffix == ".cti" else []
        return found
    bundled = bundled_producer()
    return [bundled] if bundled else []


class _Shared:
    def __init__(self, harvester: Any) -> None:
        self.harvester = harvester
        self.users = 0


_lock = threading.Lock()
_shared: dict[tuple[str, ...], _Shared] = {}


def acquire_harvester(cti_files: list[Path]) -> Any:
    """The process's Harvester over ``cti_files``, created (and devices enumerated) on first use.

    Raises
    ------
    LibraryMissingError, DeviceError
        Vendor library missing; no producer given; a producer that fails to load.
    """
    core, _ = vendor_modules()
    if not cti_files:
        raise DeviceError(
            f"no GenTL producer (.cti) found: set cti_files, or {GENTL_PATH_VAR}, or install the "
            "'genicam' wheel that bundles a simulated producer"
        )
    key = tuple(sorted(str(Path(p).resolve()) for p in cti_files))
    with _lock:
        entry = _shared.get(key)
        if entry is None:
            h = core.Harvester()
            try:
                for path in key:
                    h.add_file(path, check_existence=True, check_validity=True)
                h.update()
            except Exception as exc:
                h.reset()
                raise DeviceError(f"cannot load GenTL producer(s) {list(key)}: {exc}") from None
            for path in key:
                logger.info("GenTL producer loaded: %s", path)
            entry = _shared[key] = _Shared(h)
        entry.users += 1
        return entry.harvester


def release_harvester(harvester: Any) -> None:
    """Give back a Harvester from :func:`acquire_harvester`; the last user resets it."""
    with _lock:
        for key, entry in list(_shared.items()):
            if entry.harvester is harvester:
                entry.users -= 1
                if entry.users <= 0:
                    del _shared[key]
                    harvester.reset()
                return
