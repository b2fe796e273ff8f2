"""What a simulated camera knows and a real one does not: optional capabilities a driver may
implement, which the run checks for with ``isinstance`` (never by duck-typing)."""

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class GroundTruthSource(Protocol):
    """A camera that knows the true bead positions of each frame it delivered (a simulator):
    the run records them in its ``truth`` table."""

    def ground_truth(self, frame_number: int) -> Any:
        """The frame's true positions: a record with ``x_nm``, ``y_nm``, ``z_nm`` (and
        ``force_pn``, ``extension_nm``, magnets...) arrays, or an ``(n, 3)`` array.

        Raises
        ------
        KeyError
            The frame is not (or no longer) known.
        """
        ...


@runtime_checkable
class BeadRadiusSource(Protocol):
    """A camera that knows the radius of its beads (a simulator): the run's force estimate
    uses it when the config gives none."""

    @property
    def bead_radius_nm(self) -> float: ...
