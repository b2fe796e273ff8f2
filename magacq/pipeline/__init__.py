"""The run's processes: the supervisor, the devices process (camera frame loop), the tracker
workers, the writer, and the live status they publish. ``run_acquisition`` is `magacq run`.

Modules: ``supervisor`` (buffers, processes, the stop sequence), ``wiring`` (what each child is
handed), ``devices`` (the producer: camera and focus stage), ``tracker`` (tracker workers),
``writer`` (rows into the run file), ``status`` (counters, the terminal status and the ``status``
MatrixBuffer that `magacq view` reads).
"""

from .status import read_status
from .supervisor import run_acquisition

__all__ = ["read_status", "run_acquisition"]
