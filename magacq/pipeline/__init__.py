"""The run's processes: the supervisor, the devices process (camera frame loop and motion
thread), the tracker workers, the writer, and the live status they publish. ``run_acquisition``
is `magacq run`; ``MotorControl`` moves a running acquisition's magnets from any process.

Modules: ``supervisor`` (buffers, processes, the stop sequence), ``sizing`` (what the buffers
need, checked against /dev/shm and memory first), ``wiring`` (what each child is handed),
``flag`` (stop flags no dying process can wedge), ``devices`` (the producer: camera, focus
stage, magnets), ``motion`` (the motion thread: magnet commands, the ``motors`` samples),
``motor_channel`` (the magnets' command channel), ``magnet_cli`` (`magacq magnets`), ``rows``
(batched MatrixBuffer rows), ``tracker`` (tracker workers), ``writer`` (rows into the run file),
``status`` (counters, the terminal status and the ``status`` MatrixBuffer that `magacq view`
reads), ``live_force`` (the writer's live force estimate and its ``forces`` MatrixBuffer).
"""

from .live_force import read_forces
from .motor_channel import MotorControl, MotorError
from .status import read_status
from .supervisor import run_acquisition

__all__ = ["MotorControl", "MotorError", "read_forces", "read_status", "run_acquisition"]
