"""The ``sim`` driver: a simulated camera, focus stage and magnets on one :class:`SimMicroscope`.

Registered under the entry-point group ``magacq.drivers`` as ``sim``. ``Camera`` renders tethered
beads with shot and read noise; ``FocusStage(camera=cam)`` moves that camera's focal plane;
``Magnets(camera=cam)`` moves its magnets, which set the force on and the twist of every tether.
"""

from simulators.camera import SimCamera, SimCameraSettings
from simulators.focus_stage import SimFocusStage, SimFocusStageSettings
from simulators.magnets import SimMagnets, SimMagnetsSettings

__all__ = [
    "CONFORMANCE",
    "Camera",
    "FocusStage",
    "Magnets",
    "SimCamera",
    "SimCameraSettings",
    "SimFocusStage",
    "SimFocusStageSettings",
    "SimMagnets",
    "SimMagnetsSettings",
]

#: Names the registry looks for.
Camera = SimCamera
FocusStage = SimFocusStage
Magnets = SimMagnets

#: Settings the hal conformance suite uses for this driver.
CONFORMANCE = {
    "camera": {"width": 128, "height": 96, "n_beads": 2, "roi_size": 32},
    "slow_camera": {"width": 64, "height": 64, "n_beads": 1, "roi_size": 32, "frame_rate": 1.0},
    "focus_stage": {"settle_time_s": 0.01, "sequence_max_length": 16},
    # slow enough that a move lasts long enough to watch and stop
    "magnets": {"height_velocity_mm_s": 2.0, "rotation_velocity_turns_s": 5.0},
}
