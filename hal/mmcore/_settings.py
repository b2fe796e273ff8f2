"""Settings of the mmcore driver."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from hal._settings import DeviceSettings

PropertyValue = bool | int | float | str


def _existing_dirs(paths: list[Path]) -> list[Path]:
    for p in paths:
        if not p.is_dir():
            raise ValueError(f"device adapter directory not found: {p}")
    return paths


def _existing_cfg(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"Micro-Manager config file not found: {path}")
    return path


AdapterDirs = Annotated[list[Path], AfterValidator(_existing_dirs)]
ConfigFile = Annotated[Path, AfterValidator(_existing_cfg)]


class MMCoreSettings(DeviceSettings):
    """Settings of a Micro-Manager camera reached through pymmcore.

    Attributes
    ----------
    mm_path : list of Path
        Directories searched for device adapters (``libmmgr_dal_*``), e.g. a Micro-Manager
        installation.
    config_file : Path
        Micro-Manager hardware configuration (.cfg) that loads the devices.
    camera : str, optional
        Label of the camera device; default: the core camera the .cfg selects.
    exposure_ms : float, optional
        Exposure time; default: as the .cfg leaves it.
    roi : (x, y, width, height), optional
        Sensor region in unbinned pixels; default: the full sensor.
    binning : int, optional
        Binning factor (the camera's ``Binning`` property).
    properties : dict
        Camera device properties, ``{name: value}``, checked against the allowed values and
        limits MMCore reports; a nested ``{device_label: {name: value}}`` sets another device's.
        Applied at open, before binning, ROI and exposure.
    pixel_size_nm : float, optional
        Size of one (binned) camera pixel in the sample plane; default: the .cfg's pixel size.
    buffer_mb : int, optional
        Size of MMCore's circular buffer in MB; default: MMCore's.
    timestamps : {"auto", "host"}
        Frame times from the image metadata (``ElapsedTime-ms``, seconds since the start) where
        present ("auto"), or the host's ``time.monotonic()`` when the frame is read ("host").
    """

    mm_path: AdapterDirs = Field(min_length=1)
    config_file: ConfigFile
    camera: str | None = None
    exposure_ms: float | None = Field(None, ge=0)
    roi: tuple[int, int, int, int] | None = None
    binning: int | None = Field(None, ge=1)
    properties: dict[str, PropertyValue | dict[str, PropertyValue]] = Field(default_factory=dict)
    pixel_size_nm: float | None = Field(None, gt=0)
    buffer_mb: int | None = Field(None, ge=1, le=1_000_000)
    timestamps: Literal["auto", "host"] = "auto"


class MMCoreFocusSettings(DeviceSettings):
    """Settings of a Micro-Manager focus stage.

    With ``camera=`` (an open mmcore Camera) the stage uses that camera's MMCore and needs no
    ``mm_path`` or ``config_file``; alone, it loads ``config_file`` into its own MMCore.

    Attributes
    ----------
    mm_path : list of Path
        Device adapter directories (standalone only).
    config_file : Path, optional
        Micro-Manager config (standalone only).
    stage : str, optional
        Label of the focus (stage) device; default: the core focus device.
    limits_nm : (low, high), optional
        Reachable z range; default: the limits of the stage's ``Position`` property, else none.
    """

    mm_path: AdapterDirs = Field(default_factory=list)
    config_file: ConfigFile | None = None
    stage: str | None = None
    limits_nm: tuple[float, float] | None = None
