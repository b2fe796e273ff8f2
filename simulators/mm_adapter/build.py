"""Build the MagacqTest Micro-Manager device adapter with g++.

The adapter is compiled against the MMDevice sources of the pinned pymmcore release (its source
distribution on PyPI holds them), so its device interface version matches the wheel's. Builds are
cached under a directory keyed by a hash of every source file and the compiler command, so a
second call returns at once.
"""

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

PYMMCORE_VERSION = "12.5.1.75.0"
#: The device interface version that pymmcore 12.5.1.75.0 was built with (its 4th component).
DEVICE_INTERFACE_VERSION = int(PYMMCORE_VERSION.split(".")[3])
MODULE_NAME = "MagacqTest"
#: MMCore on Linux looks for ``libmmgr_dal_<module>.so.0`` in its adapter search path.
LIBRARY_NAME = f"libmmgr_dal_{MODULE_NAME}.so.0"
ADAPTER_SOURCE = Path(__file__).with_name("MagacqTestAdapter.cpp")
MMDEVICE_SOURCES = (
    "Debayer.cpp",
    "DeviceUtils.cpp",
    "ImgBuffer.cpp",
    "MMDevice.cpp",
    "ModuleInterface.cpp",
    "Property.cpp",
)
CXXFLAGS = ("-std=c++17", "-O2", "-fPIC", "-shared", "-pthread", "-fvisibility=hidden")
SDIST_INDEX = "https://pypi.org/simple/pymmcore/"
DEFAULT_OUT_DIR = Path(__file__).with_name("build")

logger = logging.getLogger("simulators.mm_adapter")


class AdapterBuildError(RuntimeError):
    """The test adapter could not be built (no sources, no compiler, a compile error)."""


def default_cache_dir() -> Path:
    """``$MAGACQ_CACHE/mm_adapter``, else ``~/.cache/magacq/mm_adapter``."""
    root = os.environ.get("MAGACQ_CACHE") or Path.home() / ".cache" / "magacq"
    return Path(root) / "mm_adapter"


def _download_sdist(dest: Path) -> Path:
    """Fetch the pymmcore sdist from PyPI's simple index (PEP 691 JSON), checking its sha256.

    ``pip download --no-binary`` would also fetch it but then insists on building its metadata,
    which needs meson and a C++ toolchain for MMCore; the sources alone are all we need.
    """
    name = f"pymmcore-{PYMMCORE_VERSION}.tar.gz"
    target = dest / name
    if target.exists():
        return target
    req = urllib.request.Request(
        SDIST_INDEX, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            index = json.load(resp)
        entry = next(f for f in index["files"] if f["filename"] == name)
        with urllib.request.urlopen(entry["url"], timeout=120) as resp:
            data = resp.read()
    except (OSError, StopIteration, KeyError, ValueError) as exc:
        raise AdapterBuildError(
            f"cannot download {name} from PyPI ({exc}); set MAGACQ_MMDEVICE_SRC to a directory "
            "holding the MMDevice sources (MMDevice.h, ...)"
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["hashes"]["sha256"]:
        raise AdapterBuildError(f"{name}: sha256 mismatch ({digest})")
    dest.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


def mmdevice_source_dir(cache_dir: Path | None = None) -> Path:
    """The MMDevice sources: ``$MAGACQ_MMDEVICE_SRC``, else extracted from the pymmcore sdist."""
    env = os.environ.get("MAGACQ_MMDEVICE_SRC")
    if env:
        src = Path(env)
        if not (src / "MMDevice.h").is_file():
            raise AdapterBuildError(f"MAGACQ_MMDEVICE_SRC={env} holds no MMDevice.h")
        return src
    cache_dir = cache_dir or default_cache_dir()
    src = cache_dir / "sdist" / f"pymmcore-{PYMMCORE_VERSION}" / "subprojects" / "mmdevice"
    if (src / "MMDevice.h").is_file():
        return src
    archive = _download_sdist(cache_dir / "sdist")
    prefix = f"pymmcore-{PYMMCORE_VERSION}/subprojects/mmdevice/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
        tar.extractall(cache_dir / "sdist", members=members, filter="data")
    if not (src / "MMDevice.h").is_file():
        raise AdapterBuildError(f"{archive.name} holds no subprojects/mmdevice/MMDevice.h")
    return src


def source_interface_version(src: Path) -> int:
    """DEVICE_INTERFACE_VERSION as written in ``src/MMDevice.h``."""
    m = re.search(r"#define\s+DEVICE_INTERFACE_VERSION\s+(\d+)", (src / "MMDevice.h").read_text())
    if not m:
        raise AdapterBuildError(f"{src / 'MMDevice.h'} defines no DEVICE_INTERFACE_VERSION")
    return int(m.group(1))


def _compiler() -> str:
    cxx = os.environ.get("CXX") or shutil.which("g++")
    if not cxx:
        raise AdapterBuildError("g++ not found: install it (Debian/Ubuntu: apt-get install g++)")
    return cxx


def _build_key(src: Path, cxx: str) -> str:
    h = hashlib.sha256()
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    h.update(version.encode())
    h.update(" ".join(CXXFLAGS).encode())
    files = [ADAPTER_SOURCE, *sorted(src.glob("*.h")), *(src / f for f in MMDEVICE_SOURCES)]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _compile(cache_dir: Path) -> Path:
    """The library for the current sources, compiled into ``cache_dir/<source hash>/``."""
    if not sys.platform.startswith("linux"):
        raise AdapterBuildError(
            f"the test adapter is built with g++ on Linux only; on {sys.platform} build it by "
            "hand (README, Micro-Manager: the MSVC and clang recipes)"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    src = mmdevice_source_dir(cache_dir)
    found = source_interface_version(src)
    if found != DEVICE_INTERFACE_VERSION:
        raise AdapterBuildError(
            f"MMDevice sources at {src} have device interface version {found}; "
            f"pymmcore {PYMMCORE_VERSION} needs {DEVICE_INTERFACE_VERSION}"
        )
    cxx = _compiler()
    target = cache_dir / _build_key(src, cxx) / LIBRARY_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    import fcntl  # Linux (above)

    # One builder at a time (parallel test sessions); the others wait and reuse its result.
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            built = Path(tmp) / LIBRARY_NAME
            cmd = [
                cxx,
                *CXXFLAGS,
                f"-I{src}",
                str(ADAPTER_SOURCE),
                *(str(src / f) for f in MMDEVICE_SOURCES),
                "-o",
                str(built),
            ]
            logger.info("compiling the MagacqTest adapter: %s", " ".join(cmd))
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise AdapterBuildError(
                    f"compiling the MagacqTest adapter failed:\n{proc.stderr[-4000:]}"
                )
            built.replace(target)
    return target


def build_adapter(out_dir: Path | None = None, *, cache_dir: Path | None = None) -> Path:
    """Build (or reuse) the MagacqTest adapter and place it in ``out_dir``.

    The compiled library is cached in ``cache_dir`` under a hash of its sources and compiler,
    so only the first call compiles; later ones copy (atomically, and only when it changed).

    Parameters
    ----------
    out_dir : Path, optional
        Where to put the library: the adapter search path (``mm_path``) to hand to MMCore.
        Default :data:`DEFAULT_OUT_DIR` (``simulators/mm_adapter/build``, git-ignored).
    cache_dir : Path, optional
        Build cache; default :func:`default_cache_dir`.

    Returns
    -------
    Path
        ``out_dir/libmmgr_dal_MagacqTest.so.0``.

    Raises
    ------
    AdapterBuildError
        No sources, no compiler, wrong device interface version, or a compile error.
    """
    built = _compile(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    out_dir = Path(out_dir) if out_dir is not None else DEFAULT_OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / LIBRARY_NAME
    data = built.read_bytes()
    if not (target.is_file() and target.read_bytes() == data):
        # Replace, never overwrite in place: a process that has the old file loaded keeps it.
        with tempfile.NamedTemporaryFile(dir=out_dir, delete=False) as tmp:
            tmp.write(data)
        Path(tmp.name).replace(target)
    return target


if __name__ == "__main__":
    print(build_adapter())
