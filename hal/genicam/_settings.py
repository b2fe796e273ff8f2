"""Settings of the genicam driver."""

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from hal._settings import DeviceSettings
from hal.genicam._producer import default_cti_files

NodeValue = bool | int | float | str


class GenICamSettings(DeviceSettings):
    """Settings of a GenICam camera reached through harvesters.

    Attributes
    ----------
    cti_files : list of Path
        GenTL producer files. Default: every ``*.cti`` in the directories named by
        ``GENICAM_GENTL64_PATH``; when that variable is unset, the simulated producer bundled in
        the ``genicam`` wheel (viky.cti in 1.6.0, TLSimu.cti in 1.5.0); else none (open fails).
    serial_number, model : str, optional
        Keep only devices with this serial number / model name.
    index : int
        Which of the devices left after those filters (0: the first).
    nodes : dict
        Node-map values (``Width``, ``PixelFormat``, ``ExposureTime`` in µs, any node), applied
        at open in an order the camera accepts (pixel format and binning, region, exposure,
        frame rate, then the rest in the given order). A command node runs when given ``true``.
    pixel_size_nm : float
        Size of one (binned) camera pixel in the sample plane, in nm.
    fetch_timeout_s : float
        Longest single wait in the vendor's fetch: a stop from another thread ends a blocked
        :meth:`read_frame` within about twice this.
    num_buffers : int
        Frame buffers announced to the producer (at least the producer's minimum).
    timestamps : {"auto", "device", "host"}
        Frame time source: the device clock where the producer reports one ("auto"), always the
        device clock (error if it has none), or the host's ``time.monotonic()`` at fetch.
    """

    cti_files: list[Path] = Field(default_factory=default_cti_files)
    serial_number: str | None = None
    model: str | None = None
    index: int = Field(0, ge=0)
    nodes: dict[str, NodeValue] = Field(default_factory=dict)
    pixel_size_nm: float = Field(gt=0)
    fetch_timeout_s: float = Field(0.05, gt=0, le=5)
    num_buffers: int = Field(16, ge=1, le=1024)
    timestamps: Literal["auto", "device", "host"] = "auto"

    @field_validator("cti_files")
    @classmethod
    def _producers_exist(cls, paths: list[Path]) -> list[Path]:
        for p in paths:
            if not p.is_file():
                raise ValueError(f"GenTL producer file not found: {p}")
            if p.suffix != ".cti":
                raise ValueError(f"not a GenTL producer (.cti) file: {p}")
        return paths
