"""Settings of the mmcore driver."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

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
    presets : dict
        Config-group presets to apply, ``{group: preset}`` (e.g. ``{"Camera": "HighSpeed"}``),
        checked against the groups the .cfg defines. Applied at open, before ``properties``.
    pixel_size_nm : float, optional
        Size of one (binned) camera pixel in the sample plane; default: the .cfg's pixel size.
    buffer_mb : int, optional
        Size of MMCore's circular buffer in MB; default: MMCore's.
    timestamps : {"auto", "host"}
        Frame times from the image metadata's ``ElapsedTime-ms`` (the camera's, else MMCore's
        own, in whole ms), seconds since the acquisition started ("auto"); or the host's
        ``time.monotonic()`` when the frame is read ("host").
    """

    mm_path: AdapterDirs = Field(min_length=1)
    config_file: ConfigFile
    camera: str | None = None
    exposure_ms: float | None = Field(None, ge=0)
    roi: tuple[int, int, int, int] | None = None
    binning: int | None = Field(None, ge=1)
    properties: dict[str, PropertyValue | dict[str, PropertyValue]] = Field(default_factory=dict)
    presets: dict[str, str] = Field(default_factory=dict)
    pixel_size_nm: float | None = Field(None, gt=0)
    buffer_mb: int | None = Field(None, ge=1, le=1_000_000)
    timestamps: Literal["auto", "host"] = "auto"


class SharedCoreSettings(DeviceSettings):
    """Settings of a device beside the camera: with ``camera=`` (an open mmcore Camera) it uses
    that camera's MMCore and needs no ``mm_path`` or ``config_file``; alone, it loads
    ``config_file`` into its own MMCore.

    Attributes
    ----------
    mm_path : list of Path
        Device adapter directories (standalone only).
    config_file : Path, optional
        Micro-Manager config (standalone only).
    """

    mm_path: AdapterDirs = Field(default_factory=list)
    config_file: ConfigFile | None = None


class MMCoreFocusSettings(SharedCoreSettings):
    """Settings of a Micro-Manager focus stage (and those of :class:`SharedCoreSettings`).

    Attributes
    ----------
    stage : str, optional
        Label of the focus (stage) device; default: the core focus device.
    limits_nm : (low, high), optional
        Reachable z range, inside the limits of the stage's ``Position`` property where it has
        them; default: those limits, else none (set them for a stage that keeps its own).
    use_sequences : bool
        Run hardware sequences where the stage offers them (False: a stage whose trigger input
        is not wired to the camera).
    """

    stage: str | None = None
    limits_nm: tuple[float, float] | None = None
    use_sequences: bool = True


class MMCoreMagnetsSettings(SharedCoreSettings):
    """Settings of magnets on Micro-Manager Stage devices (and those of
    :class:`SharedCoreSettings`), as the PI, Zaber, ASI and Thorlabs adapters expose motors.

    A stage reports positions in its own unit (MMCore calls it um; a rotation stage often
    reports degrees): ``height_mm = height_offset_mm + stage / height_units_per_mm`` and
    ``rotation_turns = rotation_offset_turns + stage / rotation_units_per_turn``. A negative
    factor flips an axis (a stage that counts up as the magnets go down).

    Attributes
    ----------
    height_stage, rotation_stage : str, optional
        Labels of the Stage devices; at least one.
    height_units_per_mm, rotation_units_per_turn : float
        Stage units per mm of height (default 1000: um) and per turn (default 360: degrees).
    height_offset_mm, rotation_offset_turns : float
        Magnet position at stage position 0.
    height_limits_mm, rotation_limits_turns : (low, high), optional
        Inside the limits of the stage's ``Position`` property (converted) where it has them;
        default: those limits.
    velocity_property : str, optional
        Name of the stages' velocity property (stage units/s; e.g. PI's ``Velocity``), set for
        a move that asks for a velocity. Without it the stages move at their own speed and only
        a move that asks for a velocity is refused.
    """

    height_stage: str | None = None
    rotation_stage: str | None = None
    height_units_per_mm: float = 1000.0
    rotation_units_per_turn: float = 360.0
    height_offset_mm: float = 0.0
    rotation_offset_turns: float = 0.0
    height_limits_mm: tuple[float, float] | None = None
    rotation_limits_turns: tuple[float, float] | None = None
    velocity_property: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "MMCoreMagnetsSettings":
        if self.height_stage is None and self.rotation_stage is None:
            raise ValueError("name height_stage, rotation_stage or both")
        if self.height_units_per_mm == 0 or self.rotation_units_per_turn == 0:
            raise ValueError("height_units_per_mm and rotation_units_per_turn must not be 0")
        return self
