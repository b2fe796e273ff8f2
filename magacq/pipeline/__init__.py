"""The run: ``run_acquisition`` is `magacq run`; ``MotorControl`` moves a running acquisition's
magnets from any process.

The data path, one piece each: ``plan`` (probe the camera, place the ROIs, expand the protocol:
what to run, decided before anything starts) and ``sizing`` (what the buffers need, checked
against the machine first); ``supervisor`` (the buffers, the roster of child processes and
their policies, the stop sequence); ``wiring`` (what each child is handed, pickled);
``start_method`` (fork or spawn); ``processes`` (each child's code); ``channels`` (every
stream and command channel between them); ``magnet_cli`` (`magacq magnets`).
"""

from .acquisition import run_acquisition
from .channels.live_force import read_forces
from .channels.motor_channel import MotorControl, MotorError
from .channels.status import read_status

__all__ = ["MotorControl", "MotorError", "read_forces", "read_status", "run_acquisition"]
