"""Experiment programs: typed steps, recipes and Python scripts that drive magnets and focus.

A run config's ``protocol`` section is a :data:`Protocol` (pydantic); :func:`expand` checks it
against the devices and turns it into a :class:`Plan` of actions before anything moves; a
:class:`Runner` executes a plan (or a script through a :class:`ProtocolApi`) on a
:class:`DeviceLink`, recording each action's start and end in an :class:`EventLog`.
:class:`ZLock` and :class:`XYLock` are the long-run locks' controllers.
"""

from ._execute import (
    DeviceLink,
    EventLog,
    ProtocolApi,
    ProtocolError,
    ProtocolStopped,
    Runner,
)
from ._force_table import ForceCurve, load_force_table
from ._locks import XYLock, ZLock, sample_z, stage_sign
from ._plan import AXES, UNITS, Action, Devices, Plan, expand, recipe_steps
from ._script import check_script, load_script, script_path
from ._steps import (
    RECIPES,
    FocusStep,
    ForceCalibrationRecipe,
    ForceClamp,
    ForceExtension,
    ForceRamp,
    ForceTable,
    HoldStep,
    MagnetsStep,
    MarkStep,
    Protocol,
    RampStep,
    RepeatStep,
    RotationCurve,
    ScriptProtocol,
    Step,
    StepsProtocol,
    recipe_parameters,
)

__all__ = [
    "AXES",
    "RECIPES",
    "UNITS",
    "XYLock",
    "ZLock",
    "Action",
    "DeviceLink",
    "Devices",
    "EventLog",
    "FocusStep",
    "ForceCalibrationRecipe",
    "ForceClamp",
    "ForceCurve",
    "ForceExtension",
    "ForceRamp",
    "ForceTable",
    "HoldStep",
    "MagnetsStep",
    "MarkStep",
    "Plan",
    "Protocol",
    "ProtocolApi",
    "ProtocolError",
    "ProtocolStopped",
    "RampStep",
    "RepeatStep",
    "RotationCurve",
    "Runner",
    "ScriptProtocol",
    "Step",
    "StepsProtocol",
    "check_script",
    "expand",
    "load_force_table",
    "load_script",
    "recipe_parameters",
    "recipe_steps",
    "sample_z",
    "script_path",
    "stage_sign",
]
