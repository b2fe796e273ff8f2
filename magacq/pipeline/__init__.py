"""The run: ``run_acquisition`` is `magacq run`; ``MotorControl`` moves a running acquisition's
magnets from any process.

The data path, one piece each: ``plan`` (probe the camera, place the ROIs, expand the protocol:
what to run, decided before anything starts) and ``sizing`` (what the buffers need, checked
against the machine first); ``supervisor`` (the buffers, the roster of child processes and
their policies, the stop sequence); ``wiring`` (what each child is handed, pickled);
``start_method`` (fork or spawn); ``processes`` (each child's code); ``channels`` (every
stream and command channel between them); ``magnet_cli`` (`magacq magnets`).
"""

import importlib
from typing import Any

#: The package's names and their modules, imported on first use: a command that needs one
#: module of the package (``validate``: ``sizing``) does not import the whole run.
_LAZY = {
    "run_acquisition": ".acquisition",
    "read_forces": ".channels.live_force",
    "MotorControl": ".channels.motor_channel",
    "MotorError": ".channels.motor_channel",
    "read_status": ".channels.status",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)
