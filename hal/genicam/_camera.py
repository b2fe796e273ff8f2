"""The genicam camera driver: any GenICam/GenTL camera through harvesters."""

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hal._camera import Camera as _Camera
from hal._camera import FrameInfo, TimestampClock
from hal._errors import (
    AcquisitionEnded,
    DeviceError,
    HalTimeoutError,
    UnsupportedSettingError,
)
from hal.genicam._nodes import NodeValue, access, apply_nodes, read_node, write_node
from hal.genicam._pixels import FORMATS, FORMATS_BY_CODE, PixelFormat, unpack
from hal.genicam._producer import (
    acquire_harvester,
    default_cti_files,
    missing_library,
    release_harvester,
    vendor_modules,
)
from hal.genicam._settings import GenICamSettings

logger = logging.getLogger("hal.genicam")

_BUSY = ("ResourceInUseException", "AccessDeniedException")
_EXPOSURE_NODES = ("ExposureTime", "ExposureTimeAbs")
_RATE_NODES = ("AcquisitionFrameRate", "AcquisitionFrameRateAbs")
_RATE_ENABLE_NODES = ("AcquisitionFrameRateEnable", "AcquisitionFrameRateEnabled")
_TICK_NODES = ("GevTimestampTickFrequency", "TimestampTickFrequency")
#: GigE Vision 1.x block ids are 16 bits and skip 0.
_GEV_BLOCK_ID_PERIOD = 0xFFFF


class DeviceBusyError(DeviceError):
    """The device is already opened by another acquirer (this process or another)."""


def _describe(info: Any) -> str:
    return f"serial {info.serial_number!r}, model {info.model!r}, id {info.id_!r}"


def list_devices(cti_files: list[Path] | None = None) -> list[dict[str, str]]:
    """The devices the producers find, as dicts of serial_number, model, vendor, id.

    Parameters
    ----------
    cti_files : list of Path, optional
        Producers; default as :class:`GenICamSettings` (GENICAM_GENTL64_PATH, else bundled).
    """
    files = default_cti_files() if cti_files is None else list(cti_files)
    harvester = acquire_harvester(files)
    try:
        return [
            {"serial_number": d.serial_number, "model": d.model, "vendor": d.vendor, "id": d.id_}
            for d in harvester.device_info_list
        ]
    finally:
        release_harvester(harvester)


class Camera(_Camera):
    """A GenICam camera (GigE Vision, USB3 Vision, CoaXPress, ...) driven through harvesters.

    Delivers Mono8 as uint8 and Mono10/12/14/16 (packed or not) as uint16, unpacked in place
    into the caller's array. Frame ids from the producer number the frames, so a gap shows as a
    jump in ``frame_number`` and adds to :attr:`dropped_frames`.

    Parameters
    ----------
    settings : mapping, optional
        See :class:`GenICamSettings`.
    """

    Settings: ClassVar[type[GenICamSettings]] = GenICamSettings
    settings: GenICamSettings

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self._harvester: Any = None
        self._ia: Any = None
        self._node_map: Any = None
        self._fmt: PixelFormat = FORMATS["Mono8"]
        self._width = 0
        self._height = 0
        self._fetch_lock = threading.Lock()
        self._stopping = threading.Event()
        self.dropped_frames = 0
        self.device_info: dict[str, str] = {}
        self._reset_counters(None)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        missing = missing_library()
        if missing:
            return f"{missing} is not installed (pip install 'magacq[genicam]')"
        if not default_cti_files():
            return "no GenTL producer: set GENICAM_GENTL64_PATH or name cti_files"
        return None

    # --- open / close -------------------------------------------------------------------
    def _do_open(self) -> None:
        s = self.settings
        harvester = acquire_harvester(s.cti_files)
        try:
            info = self._select(harvester)
            self._ia = self._create(harvester, info)
            self._harvester = harvester
        except BaseException:
            release_harvester(harvester)
            raise
        try:
            self._node_map = self._ia.remote_device.node_map
            self._ia.num_buffers = max(s.num_buffers, self._ia.min_num_buffers)
            self.device_info = {
                "serial_number": info.serial_number,
                "model": info.model,
                "vendor": info.vendor,
                "id": info.id_,
            }
            self._configure(s.nodes)
            logger.info(
                "opened %s: %dx%d %s", _describe(info), self._width, self._height, self._fmt.name
            )
        except BaseException:
            self._do_close()
            raise

    def _select(self, harvester: Any) -> Any:
        s = self.settings
        devices = list(harvester.device_info_list)
        if not devices:
            producers = ", ".join(map(str, s.cti_files))
            raise DeviceError(f"no GenICam device found by the producer(s) {producers}")
        matches = [
            d
            for d in devices
            if (s.serial_number is None or d.serial_number == s.serial_number)
            and (s.model is None or d.model == s.model)
        ]
        if s.index >= len(matches):
            wanted = ", ".join(
                f"{k}={v!r}"
                for k, v in (("serial_number", s.serial_number), ("model", s.model))
                if v is not None
            )
            raise DeviceError(
                f"no GenICam device matches {wanted or 'the settings'} with index {s.index} "
                f"({len(matches)} match); devices: " + "; ".join(map(_describe, devices))
            )
        return matches[s.index]

    def _create(self, harvester: Any, info: Any) -> Any:
        previous = signal.getsignal(signal.SIGINT)
        try:
            return harvester.create(info)
        except Exception as exc:
            if type(exc).__name__ in _BUSY:
                raise DeviceBusyError(
                    f"GenICam device {_describe(info)} is busy: another acquirer has it open"
                ) from None
            raise DeviceError(f"cannot open GenICam device {_describe(info)}: {exc}") from None
        finally:
            # harvesters installs its own SIGINT handler (which destroys the acquirer and
            # swallows Ctrl-C) when created on the main thread; the application owns signals.
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, previous)

    def _do_close(self) -> None:
        self._stopping.set()
        with self._fetch_lock:  # after any read or stop in another thread
            ia, harvester = self._ia, self._harvester
            self._ia = self._node_map = self._harvester = None
            try:
                if ia is not None:
                    ia.destroy()
            finally:
                if harvester is not None:
                    release_harvester(harvester)

    # --- nodes --------------------------------------------------------------------------
    def get_node(self, name: str) -> NodeValue:
        """Read a node of the camera's node map (enumerations as their name)."""
        self._require_open()
        return read_node(self._node_map, name)

    def set_node(self, name: str, value: NodeValue) -> None:
        """Write one node; see :meth:`set_nodes`."""
        self.set_nodes({name: value})

    def set_nodes(self, values: dict[str, NodeValue]) -> None:
        """Write nodes in a valid order; geometry and pixel format only while stopped.

        Raises
        ------
        UnsupportedSettingError
            Unknown node, a value it does not accept (the message lists what it does), or an
            unsupported pixel format.
        DeviceError
            Not open, or a geometry change while acquiring.
        """
        self._require_open()
        geometry = {"Width", "Height", "PixelFormat", "OffsetX", "OffsetY"}
        if self._is_running and geometry.intersection(values) | {
            n for n in values if n.startswith(("Binning", "Decimation"))
        }:
            raise DeviceError("stop the acquisition before changing the region or pixel format")
        self._configure(values)

    def _configure(self, values: dict[str, NodeValue]) -> None:
        nm = self._node_map
        values = dict(values)
        symbolics = tuple(nm.PixelFormat.symbolics) if nm.has_node("PixelFormat") else ()
        usable = [f for f in FORMATS if f in symbolics]
        if "PixelFormat" in values and values["PixelFormat"] not in usable:
            why = (
                "not offered by this camera"
                if values["PixelFormat"] in FORMATS
                else ("not supported by the genicam driver")
            )
            raise UnsupportedSettingError(
                f"PixelFormat {values['PixelFormat']!r} is {why}; usable: "
                f"{', '.join(usable) or 'none'} (the camera offers {', '.join(symbolics)}; "
                f"the driver reads {', '.join(FORMATS)})"
            )
        if "PixelFormat" not in values and symbolics and nm.PixelFormat.value not in FORMATS:
            if not usable:
                raise UnsupportedSettingError(
                    f"the camera offers no monochrome format the driver reads "
                    f"({', '.join(symbolics)}); supported: {', '.join(FORMATS)}"
                )
            logger.info("PixelFormat %s unsupported; using %s", nm.PixelFormat.value, usable[0])
            values = {"PixelFormat": usable[0], **values}
        try:
            apply_nodes(nm, values)
        finally:
            self._refresh_geometry()

    def _refresh_geometry(self) -> None:
        nm = self._node_map
        self._width = int(nm.Width.value)
        self._height = int(nm.Height.value)
        name = nm.PixelFormat.value if nm.has_node("PixelFormat") else "Mono8"
        self._fmt = FORMATS.get(name, self._fmt)

    def _first_node(self, names: tuple[str, ...]) -> Any:
        for name in names:
            if self._node_map.has_node(name):
                node = self._node_map.get_node(name)
                if access(node) in ("RO", "RW"):
                    return node
        return None

    # --- geometry and exposure ----------------------------------------------------------
    @property
    def width(self) -> int:
        return self._width

    @property
    def height(self) -> int:
        return self._height

    @property
    def dtype(self) -> np.dtype:
        return self._fmt.dtype

    @property
    def bit_depth(self) -> int:
        return self._fmt.bits

    @property
    def pixel_format(self) -> str:
        """The PixelFormat the camera delivers (PFNC name)."""
        return self._fmt.name

    @property
    def timestamp_clock(self) -> TimestampClock:
        """The camera's own clock (GenTL timestamps count from its power-on or a reset), or
        the host's with ``timestamps: host``, for a camera without timestamps (known at the
        first frame), and once its timestamps failed."""
        if self.settings.timestamps == "host" or self._time_source == "host":
            return TimestampClock.HOST_MONOTONIC
        return TimestampClock.CAMERA_FREE_RUNNING

    @property
    def pixel_size_nm(self) -> float:
        return self.settings.pixel_size_nm

    @property
    def exposure_ms(self) -> float:
        """Exposure in ms from ExposureTime (µs); NaN where the camera has no such node."""
        self._require_open()
        node = self._first_node(_EXPOSURE_NODES)
        return float(node.value) / 1000.0 if node is not None else math.nan

    @exposure_ms.setter
    def exposure_ms(self, value: float) -> None:
        self._require_open()
        node = self._first_node(_EXPOSURE_NODES)
        if node is None:
            raise UnsupportedSettingError("the camera has no ExposureTime node")
        if self._node_map.has_node("ExposureAuto"):
            write_node(self._node_map, "ExposureAuto", "Off")
        write_node(self._node_map, node.node.name, float(value) * 1000.0)

    @property
    def frame_rate(self) -> float:
        self._require_open()
        enable = self._first_node(_RATE_ENABLE_NODES)
        if enable is not None and not enable.value:
            return 0.0
        node = self._first_node(_RATE_NODES)
        return float(node.value) if node is not None else 0.0

    @frame_rate.setter
    def frame_rate(self, value: float) -> None:
        self._require_open()
        enable = self._first_node(_RATE_ENABLE_NODES)
        node = self._first_node(_RATE_NODES)
        if value == 0:
            if enable is not None:
                write_node(self._node_map, enable.node.name, False)
            elif node is not None:
                raise UnsupportedSettingError(
                    f"the camera cannot free-run; AcquisitionFrameRate must be {node.min} to "
                    f"{node.max} Hz"
                )
            return
        if node is None:
            raise UnsupportedSettingError("the camera has no AcquisitionFrameRate node")
        if enable is not None:
            write_node(self._node_map, enable.node.name, True)
        write_node(self._node_map, node.node.name, float(value))

    @property
    def binning(self) -> int:
        node = self._first_node(("BinningHorizontal",)) if self._is_open else None
        return int(node.value) if node is not None else 1

    @binning.setter
    def binning(self, value: int) -> None:
        self._require_open()
        if not self._node_map.has_node("BinningHorizontal"):
            return _Camera.binning.fset(self, value)  # type: ignore[attr-defined]
        nodes: dict[str, NodeValue] = {"BinningHorizontal": int(value)}
        if self._node_map.has_node("BinningVertical"):
            nodes["BinningVertical"] = int(value)
        self.set_nodes(nodes)

    @property
    def roi(self) -> tuple[int, int, int, int]:
        self._require_open()
        b = self.binning
        ox = self._first_node(("OffsetX",))
        oy = self._first_node(("OffsetY",))
        x = int(ox.value) if ox is not None else 0
        y = int(oy.value) if oy is not None else 0
        return (x * b, y * b, self._width * b, self._height * b)

    @roi.setter
    def roi(self, value: tuple[int, int, int, int]) -> None:
        self._require_open()
        b = self.binning
        x, y, w, h = (int(v) // b for v in value)
        nodes: dict[str, NodeValue] = {"Width": w, "Height": h}
        for name, offset in (("OffsetX", x), ("OffsetY", y)):
            if offset or self._node_map.has_node(name):
                nodes[name] = offset
        self.set_nodes(nodes)

    # --- acquisition --------------------------------------------------------------------
    def _reset_counters(self, n_frames: int | None) -> None:
        self._n_frames = n_frames
        self._delivered = 0
        self._first_id: int | None = None
        self._last_id = 0
        self._last_number = -1
        self._time_source: str | None = None
        self._last_stamp = float("-inf")
        self._tick_s = 1e-9
        self._checked = False
        self.dropped_frames = 0

    def _do_start(self, n_frames: int | None) -> None:
        self._reset_counters(n_frames)
        self._stopping.clear()
        try:
            self._ia.start()
        except Exception as exc:
            raise DeviceError(f"the camera refused to start: {exc}") from None

    def _do_stop(self) -> None:
        self._stopping.set()
        with self._fetch_lock:  # a read in progress sees the flag within one fetch slice
            if self._ia is not None:
                self._ia.stop()
        if self.dropped_frames:
            logger.warning("%d frame(s) dropped during the acquisition", self.dropped_frames)

    @contextlib.contextmanager
    def _fetched(self, wait: float) -> Iterator[Any]:
        """The next filled GenTL buffer, given back to the producer on exit."""
        self._ia.timeout_period_on_update_event_data_call = max(1, round(wait * 1000))
        raw = self._ia.fetch(timeout=wait, is_raw=True)
        try:
            yield raw
        finally:
            raw.parent.queue_buffer(raw)

    def _do_read_frame(self, out: np.ndarray, timeout: float) -> FrameInfo:
        _, gentl = vendor_modules()
        deadline = time.monotonic() + timeout
        fetched_once = False
        with self._fetch_lock:
            while True:
                if self._stopping.is_set():
                    raise AcquisitionEnded("the camera was stopped")
                if self._n_frames is not None and self._delivered >= self._n_frames:
                    raise AcquisitionEnded(f"all {self._n_frames} frames delivered")
                remaining = deadline - time.monotonic()
                # Fetch at least once: timeout=0 polls for a frame that has already arrived.
                if remaining <= 0 and fetched_once:
                    raise HalTimeoutError(f"no frame from the camera within {timeout} s")
                fetched_once = True
                wait = max(min(self.settings.fetch_timeout_s, remaining), 0.001)
                try:
                    with self._fetched(wait) as raw:
                        # The copy happens here: once the buffer is requeued, its data is gone.
                        host_time = time.monotonic()
                        self._copy(raw, out)
                        number = self._frame_number(raw)
                        stamp = self._timestamp(raw, host_time)
                except gentl.TimeoutException:
                    continue
                self._delivered += 1
                return FrameInfo(stamp, number)

    def _copy(self, raw: Any, out: np.ndarray) -> None:
        fmt, w, h = self._fmt, self._width, self._height
        if not self._checked:
            self._check_buffer(raw)
        data = raw.raw_buffer
        offset = raw.image_offset
        pad = raw.padding_x
        if fmt.packed:
            row = -(-w * fmt.bits // 8) + pad
            if pad:
                src = np.ndarray((h, row), np.uint8, buffer=data, offset=offset)
            else:
                src = np.frombuffer(data, np.uint8, count=fmt.nbytes(w, h), offset=offset)
            unpack(src, fmt.name, out)
            return
        dtype = fmt.dtype if self._little_endian else fmt.dtype.newbyteorder(">")
        size = dtype.itemsize
        row = w * size + pad
        if len(data) < offset + row * (h - 1) + w * size:
            raise DeviceError(f"the camera delivered {len(data) - offset} bytes, short of a frame")
        if pad:
            src = np.ndarray((h, w), dtype, buffer=data, offset=offset, strides=(row, size))
        else:
            src = np.frombuffer(data, dtype, count=w * h, offset=offset).reshape(h, w)
        np.copyto(out, src)

    def _check_buffer(self, raw: Any) -> None:
        """Once per acquisition: the producer's buffer is the format and size we expect."""
        self._little_endian = True
        with contextlib.suppress(Exception):
            self._little_endian = raw.pixel_endianness != 2  # PIXELENDIANNESS_BIG
        code = None
        with contextlib.suppress(Exception):
            code = raw.pixel_format
        if code is not None and code != self._fmt.code:
            got = FORMATS_BY_CODE.get(code)
            raise DeviceError(
                f"the camera delivered {got.name if got else hex(code)} frames although its "
                f"PixelFormat is {self._fmt.name}"
            )
        with contextlib.suppress(Exception):
            if (raw.width, raw.height) != (self._width, self._height):
                raise DeviceError(
                    f"the camera delivered {raw.width}x{raw.height} frames, expected "
                    f"{self._width}x{self._height}"
                )
        self._checked = True

    def _frame_number(self, raw: Any) -> int:
        try:
            fid = int(raw.frame_id)
        except Exception:  # a producer without frame ids: count what arrives
            fid = self._last_id + 1 if self._first_id is not None else 0
        if self._first_id is None:
            self._first_id = self._last_id = fid
            self._last_number = 0
            return 0
        step = fid - self._last_id
        if step <= 0 and self._last_id <= _GEV_BLOCK_ID_PERIOD:
            step += _GEV_BLOCK_ID_PERIOD  # 16-bit block id wrapped
        if step <= 0:
            logger.warning("frame id went back from %d to %d", self._last_id, fid)
            step = 1
        self._last_id = fid
        if step > 1:
            self.dropped_frames += step - 1
            logger.debug("frame id gap: %d frame(s) dropped", step - 1)
        self._last_number += step
        return self._last_number

    def _timestamp(self, raw: Any, host_time: float) -> float:
        source = self._time_source
        if source is None:
            source = self._time_source = self._pick_time_source(raw)
        try:
            if source == "ns":
                stamp = raw.timestamp_ns * 1e-9
            elif source == "ticks":
                stamp = raw.timestamp * self._tick_s
            else:
                return host_time
        except Exception:
            logger.warning("device timestamps stopped; using host time from now on")
            self._time_source = "host"
            return host_time
        if stamp < self._last_stamp:  # a clock that wraps or resets would reorder frames
            logger.warning("device timestamps went backwards; using host time from now on")
            self._time_source = "host"
            return host_time
        self._last_stamp = stamp
        return stamp

    def _pick_time_source(self, raw: Any) -> str:
        if self.settings.timestamps != "host":
            with contextlib.suppress(Exception):
                _ = raw.timestamp_ns
                return "ns"
            freq = None
            with contextlib.suppress(Exception):
                _ = raw.timestamp
                with contextlib.suppress(Exception):
                    freq = float(raw.parent.parent.timestamp_frequency)
                node = None if freq else self._first_node(_TICK_NODES)
                freq = freq or (float(node.value) if node is not None else None)
            if freq:
                self._tick_s = 1.0 / freq
                return "ticks"
            if self.settings.timestamps == "device":
                raise DeviceError("the camera reports no timestamps (or no tick frequency)")
        logger.info("frame times from the host clock")
        return "host"
