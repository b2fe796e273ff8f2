"""The ``protocol`` section of a run config: typed steps, ready-made recipes, or a Python script.

A protocol is data (pydantic, unknown keys refused, documented in `magacq schema`) that
:func:`~magacq.protocol.expand` turns into a flat list of actions before anything moves. Three
forms::

    protocol: {steps: [{step: magnets, force_pn: 5}, {step: hold, seconds: 30}, ...]}
    protocol: {recipe: force_extension, forces_pn: [0.1, 0.5, 1, 2, 5], hold_s: 30}
    protocol: {script: my_protocol.py}

Units: magnet height mm (lower = more force), rotation turns, focus nm, force pN, time s.
"""

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Step(_Model):
    label: str | None = Field(None, description="A name for this step in the file's events.")


class MagnetsStep(_Step):
    """Move the magnets: height (mm) or force (pN, through the force table), and/or rotation."""

    step: Literal["magnets"]
    height_mm: float | None = Field(None, description="Magnet height, mm above the sample.")
    force_pn: float | None = Field(None, gt=0, description="Force, pN (needs a force table).")
    rotation_turns: float | None = Field(None, description="Magnet rotation, turns.")
    relative: bool = Field(False, description="Values are changes from where the axes are.")
    velocity: float | None = Field(
        None, gt=0, description="Height mm/s and rotation turns/s (default: the device's)."
    )

    @model_validator(mode="after")
    def _one_target(self) -> "MagnetsStep":
        if self.height_mm is not None and self.force_pn is not None:
            raise ValueError("give height_mm or force_pn, not both")
        if self.height_mm is None and self.force_pn is None and self.rotation_turns is None:
            raise ValueError("give height_mm, force_pn and/or rotation_turns")
        if self.relative and self.force_pn is not None:
            raise ValueError("force_pn cannot be relative")
        return self


class FocusStep(_Step):
    """Move the focus stage."""

    step: Literal["focus"]
    z_nm: float = Field(description="Focus position, nm.")
    relative: bool = Field(False, description="z_nm is a change from where the focus is.")


class RampStep(_Step):
    """Move one axis from ``start`` (default: where it is) to ``stop`` at a constant rate."""

    step: Literal["ramp"]
    axis: Literal["height", "rotation", "focus", "force"] = Field(
        description="height (mm), rotation (turns), focus (nm) or force (pN, constant loading "
        "rate: the height follows the force table)."
    )
    start: float | None = Field(None, description="Start value; default: where the axis is.")
    stop: float = Field(description="End value.")
    rate: float = Field(gt=0, description="Units per second (mm/s, turns/s, nm/s, pN/s).")


class HoldStep(_Step):
    """Hold everything where it is (a plateau)."""

    step: Literal["hold"]
    seconds: float = Field(gt=0, description="How long.")


class MarkStep(_Model):
    """A label in the file's events, at this moment."""

    step: Literal["mark"]
    label: str = Field(min_length=1, description="The label.")


class RepeatStep(_Step):
    """Run a block of steps ``times`` times."""

    step: Literal["repeat"]
    times: int = Field(ge=1, le=100_000, description="How many times.")
    steps: list["Step"] = Field(min_length=1, description="The block.")


Step = Annotated[
    MagnetsStep | FocusStep | RampStep | HoldStep | MarkStep | RepeatStep,
    Field(discriminator="step"),
]
RepeatStep.model_rebuild()


class ForceTable(_Model):
    """Force against magnet height, from a force calibration; interpolated monotonically."""

    heights_mm: list[float] = Field(min_length=2, description="Magnet heights, mm.")
    forces_pn: list[float] = Field(min_length=2, description="Force at each height, pN.")


class _Common(_Model):
    force_table: Path | ForceTable | None = Field(
        None,
        description="Magnet height -> force: a CSV/text file of two columns (height_mm, "
        "force_pn) or inline lists; needed for forces in pN.",
    )
    end_height_mm: float | None = Field(
        None,
        description="Where the magnets go when the protocol ends or is stopped (Ctrl-C); "
        "null leaves them where they are.",
    )


class StepsProtocol(_Common):
    """An ordered list of steps."""

    steps: list[Step] = Field(min_length=1, description="The steps, in order.")


class ForceExtension(_Common):
    """Hold the bead at a series of forces (or heights), up and then back down."""

    recipe: Literal["force_extension"]
    forces_pn: list[Annotated[float, Field(gt=0)]] | None = Field(
        None, min_length=1, description="Forces, pN, in order (needs force_table)."
    )
    heights_mm: list[float] | None = Field(
        None, min_length=1, description="Or magnet heights, mm, in order."
    )
    hold_s: float = Field(gt=0, description="Seconds at each force.")
    back_down: bool = Field(True, description="Repeat the series in reverse afterwards.")

    @model_validator(mode="after")
    def _one_series(self) -> "ForceExtension":
        if (self.forces_pn is None) == (self.heights_mm is None):
            raise ValueError("give forces_pn or heights_mm")
        return self


class RotationCurve(_Common):
    """At one force, twist from -max_turns to +max_turns in steps (and back down to -max_turns
    with ``sweep_back``, so that hysteresis shows), then to 0."""

    recipe: Literal["rotation_curve"]
    force_pn: float | None = Field(None, gt=0, description="The force, pN (needs force_table).")
    height_mm: float | None = Field(None, description="Or the magnet height, mm.")
    max_turns: float = Field(gt=0, description="Largest twist, turns either way.")
    step_turns: float = Field(gt=0, description="Turns per step.")
    hold_s: float = Field(gt=0, description="Seconds at each twist.")
    velocity: float | None = Field(None, gt=0, description="Rotation speed, turns/s.")
    sweep_back: bool = Field(
        False, description="After +max_turns, step back down to -max_turns before 0."
    )

    @model_validator(mode="after")
    def _one_force(self) -> "RotationCurve":
        if (self.force_pn is None) == (self.height_mm is None):
            raise ValueError("give force_pn or height_mm")
        return self


class ForceRamp(_Common):
    """Ramp the force at a constant loading rate, then hold, then back (optional)."""

    recipe: Literal["force_ramp"]
    start_pn: float = Field(gt=0, description="Force at the start, pN (needs force_table).")
    stop_pn: float = Field(gt=0, description="Force at the end, pN.")
    loading_rate_pn_s: float = Field(gt=0, description="dF/dt, pN/s.")
    hold_s: float = Field(0.0, ge=0, description="Seconds held at stop_pn.")
    back: bool = Field(False, description="Ramp back to start_pn at the same rate.")


class ForceClamp(_Common):
    """One force held for a duration."""

    recipe: Literal["force_clamp"]
    force_pn: float = Field(gt=0, description="The force, pN (needs force_table).")
    duration_s: float = Field(gt=0, description="How long, s.")


class ForceCalibrationRecipe(_Common):
    """Hold the magnets at a series of heights, to measure the force at each (``magacq analyze``
    then writes the lab's force table: ``force_table.csv``, as ``force_table`` reads it)."""

    recipe: Literal["force_calibration"]
    heights_mm: list[float] = Field(min_length=3, description="Magnet heights, mm.")
    hold_s: float = Field(gt=0, description="Seconds at each height (long at the far ones).")


class ScriptProtocol(_Common):
    """A Python function, for what steps cannot express (runs in a process of its own)."""

    script: Path = Field(description="The .py file.")
    function: str = Field(
        "protocol", description="Name of the function; it is called with a ProtocolApi."
    )
    timeout_s: float | None = Field(
        None, gt=0, description="A script still running after this long is stopped (exit 1)."
    )


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        if "script" in value:
            return "script"
        return str(value.get("recipe", "steps"))
    return "script" if isinstance(value, ScriptProtocol) else getattr(value, "recipe", "steps")


Protocol = Annotated[
    Annotated[StepsProtocol, Tag("steps")]
    | Annotated[ForceExtension, Tag("force_extension")]
    | Annotated[RotationCurve, Tag("rotation_curve")]
    | Annotated[ForceRamp, Tag("force_ramp")]
    | Annotated[ForceClamp, Tag("force_clamp")]
    | Annotated[ForceCalibrationRecipe, Tag("force_calibration")]
    | Annotated[ScriptProtocol, Tag("script")],
    Discriminator(_kind),
]


#: every recipe's model, by name
RECIPES: dict[str, type[_Common]] = {
    "force_extension": ForceExtension,
    "rotation_curve": RotationCurve,
    "force_ramp": ForceRamp,
    "force_clamp": ForceClamp,
    "force_calibration": ForceCalibrationRecipe,
}


def recipe_parameters() -> dict[str, list[tuple[str, str, str]]]:
    """Each recipe's parameters: ``(name, default, description)``; "required" for none."""
    out = {}
    for name, model in RECIPES.items():
        rows = []
        own = [f for f in model.model_fields if f not in _Common.model_fields]
        for field in [*own, *_Common.model_fields]:
            info = model.model_fields[field]
            if field == "recipe":
                continue
            default = "required" if info.is_required() else repr(info.default)
            rows.append((field, default, info.description or ""))
        out[name] = rows
    return out
