"""The run configuration: pydantic models (unknown keys refused), loading from YAML, JSON Schema.

Every bad input becomes one :class:`~magacq.errors.ConfigError` line naming the file and the key
(with a did-you-mean for a misspelt key) or the line of a YAML syntax error. Every relative path
in a config file (``tracking.zlut``, ``output.dir``, ``calibration.output``, the protocol's
``force_table`` and ``script``, and the drivers' path settings) is resolved against the config
file's directory, whatever the working directory; ``~`` is expanded.
"""

import datetime as _dt
import difflib
import json
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from magacq.errors import ConfigError
from magacq.protocol import Protocol

if TYPE_CHECKING:
    from hal import Device

#: Tracking algorithms ``tracking.algorithm`` accepts.
ALGORITHMS = ("centroid", "com", "autoconv", "qi", "fit")
#: Largest config file read (10 000 bead ROIs take about 150 kB).
MAX_CONFIG_BYTES = 1 << 20
#: Most YAML nodes that aliases may repeat in all (refuses alias bombs before they expand).
MAX_ALIAS_NODES = 10_000
#: Most bead ROIs a config may list.
MAX_ROIS = 10_000


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraConfig(_Section):
    """The camera and its driver settings."""

    driver: str = Field(
        description="Driver name as listed by `magacq drivers` (e.g. sim, mmcore, genicam), "
        "or a `package.module:Class` path."
    )
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Driver settings, validated by the driver's own Settings model.",
    )


class FocusStageConfig(_Section):
    """The focus (z) stage; run leaves it where it is, calibrate sweeps it."""

    driver: str = Field(description="Driver name or `package.module:Class` path.")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Focus-stage settings, validated by the driver."
    )
    move_timeout_s: float = Field(
        10.0, gt=0,
        description="A focus move still running after this long is given up (a Z-lock then "
        "switches off); the run goes on.",
    )  # fmt: skip


class MagnetsConfig(_Section):
    """The magnets (height and rotation motors), run by the devices process: every move is
    sampled into the run file's ``motors`` table; other processes move them through
    :class:`magacq.pipeline.channels.motor_channel.MotorControl` (``magacq magnets``)."""

    driver: str = Field(description="Driver name or `package.module:Class` path.")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Magnets settings, validated by the driver."
    )
    height_mm: float | None = Field(
        None, description="Height to move to before the camera starts (null: leave it)."
    )
    rotation_turns: float | None = Field(
        None, description="Rotation to move to before the camera starts (null: leave it)."
    )
    sample_hz: float = Field(
        100.0, ge=1.0, le=2000.0, description="Samples per second of the positions during moves."
    )
    move_timeout_s: float = Field(
        60.0, gt=0, description="A move still running after this long fails the run."
    )


class BuffersConfig(_Section):
    """Shared-memory buffer sizes."""

    n_stacks: int | None = Field(
        None,
        ge=2,
        le=100_000,
        description="Stacks in the video ring buffer (claimable units); null: those that hold "
        "ring_s of frames at the camera's frame_rate (within a quarter of the memory or /dev/shm "
        "free, at least 4).",
    )
    images_per_stack: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Frames per stack; a worker tracks one stack at a time. null: the frames "
        "the camera takes in stack_ms at its frame_rate, at least 1.",
    )
    ring_s: float = Field(
        0.5,
        gt=0,
        le=3600,
        description="With n_stacks null: seconds of frames the ring holds, the longest stall "
        "of the trackers (or the recorder) it absorbs without dropping a frame.",
    )
    stack_ms: float = Field(
        2.0,
        gt=0,
        le=60_000,
        description="With images_per_stack null: a stack holds the frames of this long; its "
        "first frame waits that long for the last, a part of the tracking latency.",
    )
    positions_rows: int = Field(
        200_000,
        ge=1_000,
        le=100_000_000,
        description="Rows (one per bead per frame) the positions buffer holds before the writer "
        "drains it.",
    )


class TrackingConfig(_Section):
    """Tracker workers and the tracking algorithm."""

    workers: int = Field(2, ge=1, le=64, description="Tracker worker processes.")
    roi_size: int = Field(
        64, ge=8, le=1024, description="Side of the square ROI around each bead, in pixels."
    )
    algorithm: Literal["centroid", "com", "autoconv", "qi", "fit"] = Field(
        "qi",
        description="XY algorithm: centroid (background-subtracted centre of mass, built in), "
        "or magacq.tracking's com (centre of mass), autoconv (+ self-convolution), qi "
        "(+ quadrant interpolation), fit (+ fit by the bead's own radial profile).",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Algorithm options passed to the tracking functions."
    )
    zlut: Path | None = Field(
        None,
        description="Z-LUT file written by `magacq calibrate` (relative: from the config file's "
        "folder); without it z_nm is NaN.",
    )
    profile_bead: int = Field(
        0, ge=0, description="Bead id whose radial profile is kept in the LiveProfileBuffer."
    )
    debug_delay_s: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="Testing aid: extra seconds a worker sleeps per stack (forces a full buffer).",
    )


class DetectConfig(_Section):
    """Automatic bead detection on the first frames (ring-symmetric spots)."""

    frames: int = Field(3, ge=1, le=1000, description="Frames averaged before detecting.")
    max_beads: int = Field(50, ge=1, le=10_000, description="Keep at most this many beads.")
    min_score: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Minimum radial-symmetry score (0..1) a spot needs to count as a bead.",
    )


class BeadsConfig(_Section):
    """Which beads to track: explicit ROI centres, or automatic detection when none are given."""

    rois: list[tuple[int, int]] = Field(
        default_factory=list,
        max_length=MAX_ROIS,
        description="Bead centres [x, y] in pixels (x along columns); bead ids follow this order. "
        "Empty: detect beads automatically.",
    )
    detect: DetectConfig = Field(
        default_factory=DetectConfig, description="Automatic detection options (no rois given)."
    )
    reference: list[int] = Field(
        default_factory=list,
        description="Ids of reference (stuck) beads, for drift correction downstream.",
    )
    radius_nm: float | None = Field(
        None,
        gt=0,
        description="Bead radius, nm, for the force calibration (`magacq analyze`, the live "
        "force); null: the simulated camera's own, else `magacq analyze --bead-radius`.",
    )

    @field_validator("reference")
    @classmethod
    def _unique(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value) or any(v < 0 for v in value):
            raise ValueError("reference bead ids must be distinct and >= 0")
        return value


class ZLockConfig(_Section):
    """Z-lock: the focus stage follows a stuck reference bead so its Z-LUT z stays at a target.

    Each correction fits the bead's z over the last ``window_s`` in the sample's frame (the
    focus moves taken out, so no frame is wasted after a move), extrapolates that drift over the
    tracking latency and half an interval, and moves the focus by ``gain`` times the predicted
    error: the drift rate feeds forward, so a steady drift leaves no lag."""

    bead: int = Field(ge=0, description="Id of the reference (stuck) bead the focus follows.")
    interval_s: float = Field(0.5, gt=0, le=600, description="Seconds between corrections.")
    window_s: float = Field(
        4.0, gt=0, le=3600,
        description="Seconds of the bead's z the drift and its rate are fitted on (longer: "
        "less noise, slower to follow a change of drift rate).",
    )  # fmt: skip
    gain: float = Field(
        1.0, gt=0, le=1, description="Fraction of the predicted z error corrected a step."
    )
    deadband_nm: float = Field(
        1.0, ge=0, description="No correction for a predicted error this small."
    )
    max_step_nm: float = Field(200.0, gt=0, description="Largest focus move of one correction.")
    target_nm: float | None = Field(
        None, description="The z to hold; null: the bead's z when the lock engages."
    )
    timeout_s: float = Field(
        5.0, gt=0, description="A focus move not done in this long switches the lock off."
    )


class XYLockConfig(_Section):
    """XY-lock: an ROI is re-centred once its bead's mean position is off its centre."""

    threshold_px: float = Field(
        2.0, gt=0, description="Re-centre once the bead is this far from its ROI's centre, px."
    )
    window_s: float = Field(
        0.5, gt=0, le=600, description="Seconds the bead's position is averaged over."
    )


class LiveForceConfig(_Section):
    """The live force estimate (terminal status: the tethered beads' median; `magacq view`: the
    selected bead's): each tethered bead's Allan-variance fit over its recent lateral motion."""

    extension_nm: float = Field(
        gt=0,
        description="The tethered beads' extension when the run starts, nm (a Z-LUT gives z "
        "relative to each bead's own height, not to the surface); z changes are added to it.",
    )
    axis: Literal["x", "y"] = Field(
        "y", description="Camera axis perpendicular to the magnets' field (it calibrates)."
    )
    window_s: float = Field(20.0, gt=0, le=600, description="Recent seconds fitted.")
    interval_s: float = Field(2.0, gt=0, le=600, description="Seconds between estimates.")
    temperature_k: float = Field(296.0, gt=0, description="Temperature, K.")


class LocksConfig(_Section):
    """Locks for hours-long runs, run by the protocol process (never in the frame loop);
    each is off unless given. Every action is an event of the run file."""

    z_lock: ZLockConfig | None = Field(None, description="Focus feedback on a reference bead.")
    xy_lock: XYLockConfig | None = Field(None, description="ROIs follow their beads.")

    @property
    def any(self) -> bool:
        """Some lock is on."""
        return self.z_lock is not None or self.xy_lock is not None


class VideoConfig(_Section):
    """Raw video kept by the recorder process, straight from the video buffer's stacks."""

    mode: Literal["none", "frames", "rois"] = Field(
        "none",
        description="none: no video; frames: whole frames as acquired (every `every`-th); rois: "
        "each bead's ROI of every `every`-th frame (far smaller)",
    )
    every: int = Field(1, ge=1, description="Keep every Nth frame (1: every frame).")
    compression: Literal["none", "lz4"] = Field(
        "none",
        description="none (chunks written straight from the ring) or lz4: Blosc LZ4 with bit "
        "shuffle (lossless, needs the hdf5plugin package to read, as any h5py does with it "
        "installed)",
    )
    on_backlog: Literal["drop_video", "drop_frames"] = Field(
        "drop_video",
        description="When the disk cannot keep up: drop_video keeps tracking every frame and "
        "skips video frames (listed in `video_skipped`); drop_frames holds the ring until the "
        "recorder caught up, so the camera's frames are dropped (listed in `dropped`)",
    )
    on_recorder_exit: Literal["stop", "continue"] = Field(
        "stop",
        description="If the recorder dies: stop the run, or go on tracking without video",
    )
    reserve_mb: float = Field(
        256.0, ge=0, description="Disk space kept free, MiB: below it the run ends (disk full)."
    )
    debug_delay_s: float = Field(
        0.0, ge=0.0, le=10.0, description="Testing aid: seconds the recorder sleeps per stack."
    )


class OutputConfig(_Section):
    """Where and how the run is saved."""

    dir: Path = Field(
        Path("runs"),
        description="Directory of the HDF5 file and the log file (relative: from the config "
        "file's folder).",
    )
    name: str = Field(
        "{date}_{time}_{config}.h5",
        description="File name pattern; fields: {date} (YYYYmmdd), {time} (HHMMSS), "
        "{config} (config file stem), {pid}.",
    )
    video: VideoConfig = Field(
        default_factory=VideoConfig, description="Raw video (the recorder); none by default."
    )

    @field_validator("name")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            name = format_name(value, config="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"bad file name pattern {value!r}: unknown field {exc}") from None
        if "/" in name or not name.strip():
            raise ValueError("file name pattern must give a plain file name")
        return value


class SupervisionConfig(_Section):
    """How the supervisor tells a hung or failing child from a busy one, and what it tolerates."""

    hang_timeout_s: float = Field(
        5.0, gt=0, le=3600, description="A child silent (no heartbeat) this long has hung."
    )
    start_timeout_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="The same while a child starts (compiles kernels, opens a device or file).",
    )
    camera_timeout_s: float = Field(
        10.0, gt=0, le=86400, description="A camera that delivers no frame this long fails the run."
    )
    camera_errors: int = Field(
        5,
        ge=1,
        le=1000,
        description="Camera read errors in a row that end the run (fewer: dropped frames).",
    )
    max_restarts: int = Field(
        3, ge=0, le=1000, description="Tracker restarts within restart_window_s that fail the run."
    )
    restart_window_s: float = Field(30.0, gt=0, le=86400, description="See max_restarts.")
    nice: int = Field(
        -10,
        ge=-20,
        le=0,
        description="Scheduling priority the run asks for (nice: lower is sooner) for its "
        "processes and, on Linux, its session's autogroup, where the OS allows it (root, "
        "CAP_SYS_NICE, a nice limit in limits.conf): other work on the machine then does not "
        "starve the camera and the trackers. 0: leave it.",
    )


class CalibrationConfig(_Section):
    """`magacq calibrate`: the focus sweep that records the Z-LUT (see magacq.calibrate)."""

    start_nm: float = Field(description="First focus-stage position of the sweep, nm.")
    stop_nm: float = Field(description="Last focus-stage position (included when on the grid), nm.")
    step_nm: float = Field(50.0, gt=0, description="Spacing of the sweep positions, nm.")
    settle_s: float = Field(
        0.05, ge=0, le=60, description="Extra wait after the stage reports settled, seconds."
    )
    profiles_per_step: int = Field(
        10, ge=1, le=10_000, description="Radial profiles recorded per bead at each position."
    )
    stage_moves: Literal["objective", "sample"] = Field(
        "objective",
        description="What the focus stage moves: the objective (bead height = start - stage z) "
        "or the sample (bead height = stage z - start).",
    )
    max_invalid_fraction: float = Field(
        0.2, ge=0, le=1, description="A bead with more bad profiles (lost, clipped) is flagged."
    )
    min_distinct_fraction: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Fraction of neighbouring LUT planes that must differ beyond their noise.",
    )
    drop_bad_beads: bool = Field(
        True, description="Leave flagged beads without a LUT (z NaN); false keeps them, flagged."
    )
    output: Path | None = Field(
        None, description="Z-LUT file; default zlut_{date}_{time}_{config}.h5 in output.dir."
    )


class RunConfig(_Section):
    """A whole `magacq run` configuration."""

    camera: CameraConfig = Field(description="The camera.")
    focus_stage: FocusStageConfig | None = Field(None, description="The focus stage, if any.")
    magnets: MagnetsConfig | None = Field(None, description="The magnets, if any.")
    buffers: BuffersConfig = Field(default_factory=BuffersConfig, description="Buffer sizes.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Tracking.")
    beads: BeadsConfig = Field(default_factory=BeadsConfig, description="Beads to track.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="Output file.")
    calibration: CalibrationConfig | None = Field(
        None, description="The focus sweep of `magacq calibrate`."
    )
    locks: LocksConfig = Field(
        default_factory=LocksConfig, description="Z-lock and XY-lock for long runs (off)."
    )
    live_force: LiveForceConfig | None = Field(
        None, description="The live force estimate (null: none); needs the bead radius."
    )
    protocol: Protocol | None = Field(
        None,
        description="The experiment program: steps, a recipe (force_extension, rotation_curve, "
        "force_ramp, force_clamp, force_calibration) or a Python script; the run ends with it.",
    )
    supervision: SupervisionConfig = Field(
        default_factory=SupervisionConfig, description="Hang and failure detection."
    )
    duration: float | None = Field(
        None,
        gt=0,
        description="Seconds to acquire; null runs until Ctrl-C, SIGTERM or the protocol's end.",
    )

    @model_validator(mode="after")
    def _references_exist(self) -> "RunConfig":
        if self.beads.rois:
            bad = [r for r in self.beads.reference if r >= len(self.beads.rois)]
            if bad:
                raise ValueError(f"beads.reference {bad} are not ids of beads.rois")
        z = self.locks.z_lock
        if z is not None:
            if self.focus_stage is None:
                raise ValueError("locks.z_lock needs a focus_stage")
            if self.tracking.zlut is None:
                raise ValueError("locks.z_lock needs tracking.zlut (the bead's z)")
            if self.beads.rois and z.bead >= len(self.beads.rois):
                raise ValueError(f"locks.z_lock.bead {z.bead} is not an id of beads.rois")
        return self


def format_name(pattern: str, *, config: str, when: _dt.datetime | None = None) -> str:
    """Fill the output file-name pattern."""
    when = when or _dt.datetime.now()
    return pattern.format(
        date=when.strftime("%Y%m%d"), time=when.strftime("%H%M%S"), config=config, pid=os.getpid()
    )


def json_schema() -> str:
    """The JSON Schema of the config file, for editors."""
    return json.dumps(RunConfig.model_json_schema(), indent=2)


# --- loading -------------------------------------------------------------------------------


def load_config(path: str | Path, *, check_drivers: bool = True) -> RunConfig:
    """Read, parse and validate a YAML config.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    check_drivers : bool
        Also resolve the drivers and validate their settings.

    Raises
    ------
    ConfigError
        One line naming the file and the problem.
    """
    path = Path(path)
    data = _parse_yaml(path, _read_text(path))
    if data is None:
        raise ConfigError(f"{path}: the config file is empty")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of keys at the top, got {_kind(data)}")
    config = resolve_paths(validate_config(data, source=str(path)), path.absolute().parent)
    if check_drivers:
        check_driver_settings(config, source=str(path))
    return config


def resolve_paths(config: RunConfig, base: Path) -> RunConfig:
    """``config`` with every relative path (its own and the drivers' path settings) made
    absolute against ``base``, the config file's directory."""

    def at(p: Path | None) -> Path | None:
        return None if p is None else _absolute(p, base)

    tracking = config.tracking.model_copy(update={"zlut": at(config.tracking.zlut)})
    output = config.output.model_copy(update={"dir": at(config.output.dir)})
    changes: dict[str, Any] = {"tracking": tracking, "output": output}
    if config.calibration is not None:
        output_file = at(config.calibration.output)
        changes["calibration"] = config.calibration.model_copy(update={"output": output_file})
    if config.protocol is not None:
        protocol = config.protocol
        if isinstance(protocol.force_table, Path):
            protocol = protocol.model_copy(update={"force_table": at(protocol.force_table)})
        if hasattr(protocol, "script"):
            protocol = protocol.model_copy(update={"script": at(protocol.script)})
        changes["protocol"] = protocol
    for key in ("camera", "focus_stage", "magnets"):
        section = getattr(config, key)
        if section is not None:
            settings = _resolve_settings(key, section.driver, section.settings, base)
            changes[key] = section.model_copy(update={"settings": settings})
    return config.model_copy(update=changes)


def _resolve_settings(kind: str, driver: str, settings: dict[str, Any], base: Path) -> dict:
    """Driver ``settings`` with the values of its path-typed settings made absolute against
    ``base`` (unchanged when the driver cannot be found: check_driver_settings says why)."""
    from hal import HalError

    try:
        fields = driver_class(kind, driver).Settings.model_fields
    except HalError:
        return settings

    def at(value: Any) -> Any:
        if isinstance(value, str | Path):
            return str(_absolute(Path(value), base))
        if isinstance(value, list):
            return [at(v) for v in value]
        return value

    return {
        name: at(value) if name in fields and _holds_path(fields[name].annotation) else value
        for name, value in settings.items()
    }


def _absolute(path: Path, base: Path) -> Path:
    """``path`` (``~`` expanded) against ``base``, ``..`` folded; symlinks are kept."""
    return Path(os.path.normpath(base / path.expanduser()))


def _holds_path(annotation: Any) -> bool:
    """The type is a Path, or a list, union or Annotated of one."""
    return annotation is Path or any(_holds_path(a) for a in typing.get_args(annotation))


def _read_text(path: Path) -> str:
    """The config's text; ConfigError when missing, unreadable or over MAX_CONFIG_BYTES."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: config file larger than {MAX_CONFIG_BYTES // 1024} KiB; a config this big "
            f"is not a config (beads.rois holds at most {MAX_ROIS} beads)"
        )
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def _parse_yaml(path: Path, text: str) -> Any:
    """YAML ``text`` as Python objects; aliases that repeat too much (alias bombs) are refused
    from the node graph, before anything is expanded."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_aliases(node, path)
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _check_aliases(root: yaml.Node, path: Path) -> None:
    """Refuse a recursive alias, or aliases repeating more than MAX_ALIAS_NODES nodes in all."""
    sizes: dict[int, int] = {}  # id(node) -> nodes it expands to
    open_: set[int] = set()
    repeated = 0

    def size(node: yaml.Node) -> int:
        nonlocal repeated
        key = id(node)
        if key in open_:
            raise ConfigError(f"{path}: invalid YAML: an alias refers to a node containing it")
        if key in sizes:  # met again: an alias
            repeated += sizes[key]
            if repeated > MAX_ALIAS_NODES:
                raise ConfigError(
                    f"{path}: YAML aliases repeat more than {MAX_ALIAS_NODES} nodes "
                    "(an alias bomb?); write the values out"
                )
            return sizes[key]
        open_.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        sizes[key] = 1 + sum(size(child) for child in children)
        open_.discard(key)
        return sizes[key]

    size(root)


def validate_config(data: Mapping[str, Any], *, source: str = "config") -> RunConfig:
    """Validate an already parsed mapping; raises ConfigError naming ``source`` and the key."""
    try:
        return RunConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None


def check_driver_settings(config: RunConfig, *, source: str = "config") -> dict[str, Any]:
    """Resolve the camera (focus-stage, magnets) driver and validate its settings.

    Returns
    -------
    dict
        ``"camera"`` (and ``"focus_stage"``, ``"magnets"``) -> ``(driver class, validated
        settings)``.
    """
    from hal import HalError

    checked: dict[str, Any] = {}
    sections: list[tuple[str, Any]] = [("camera", config.camera)]
    for key in ("focus_stage", "magnets"):
        if getattr(config, key) is not None:
            sections.append((key, getattr(config, key)))
    for key, section in sections:
        try:
            cls = driver_class(key, section.driver)
        except HalError as exc:
            raise ConfigError(f"{source}: {key}.driver: {exc}") from None
        from hal import validate_settings

        allowed = sorted(cls.Settings.model_fields)
        for name in section.settings:  # a misspelt setting: say which was meant
            if cls.Settings.model_config.get("extra") == "forbid" and name not in allowed:
                hint = difflib.get_close_matches(str(name), allowed, n=1)
                tip = (
                    f" (did you mean {hint[0]!r}?)" if hint else f" (allowed: {', '.join(allowed)})"
                )
                raise ConfigError(f"{source}: {key}.settings.{name}: unknown setting{tip}")
        try:
            checked[key] = (
                cls,
                validate_settings(cls.Settings, section.settings, device=section.driver),
            )
        except HalError as exc:
            raise ConfigError(f"{source}: {key}.settings: {exc}") from None
    return checked


def driver_class(kind: str, name: str) -> "type[Device]":
    """The Camera, FocusStage or Magnets class (``kind``: camera, focus_stage, magnets) of
    driver ``name``.

    Raises
    ------
    hal.DriverNotFoundError
        No such driver, or the driver cannot be imported.
    """
    import hal

    lookup = {"camera": hal.camera_class, "focus_stage": hal.focus_stage_class,
              "magnets": hal.magnets_class}  # fmt: skip
    return lookup[kind](name)


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _describe(exc: ValidationError) -> str:
    """One line for the first problems pydantic found, keys dotted, with a did-you-mean."""
    parts = []
    for err in exc.errors()[:3]:
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _fields_at(err["loc"][:-1])
            hint = difflib.get_close_matches(loc[-1], allowed, n=1)
            tip = f" (did you mean {hint[0]!r}?)" if hint else f" (allowed: {', '.join(allowed)})"
            parts.append(f"{key}: unknown key{tip if allowed else ''}")
        elif err["type"] == "missing":
            parts.append(f"{key}: required key missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            shown = f" (got {got!r})" if got is not None and not isinstance(got, dict) else ""
            parts.append(f"{key}: {msg}{shown}")
    more = len(exc.errors()) - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model at ``loc`` inside RunConfig (empty when not a model); a tagged
    union's tag in ``loc`` (``protocol.rotation_curve``) picks its member."""
    models: dict[str | None, type[BaseModel]] = {None: RunConfig}
    for part in loc:
        if isinstance(part, int):
            continue
        if part in models:  # the tag of a union's member
            models = {None: models[part]}
            continue
        model = models.get(None)
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return []
        models = _models_in(field.annotation)
    model = models.get(None)
    return sorted(model.model_fields) if model is not None else []


def _models_in(annotation: Any) -> dict[str | None, type[BaseModel]]:
    """The models an annotation holds: by their tag in a tagged union, else under None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {None: annotation}
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Annotated:
        inner = _models_in(args[0])
        tags = [a.tag for a in args[1:] if isinstance(a, Tag)]
        return {tags[0]: inner[None]} if tags and None in inner else inner
    found: dict[str | None, type[BaseModel]] = {}
    for arg in args:
        found.update(_models_in(arg))
    return found
