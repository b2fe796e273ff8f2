"""Motor trajectories: moves with a velocity limit and an acceleration, as stepper and servo
motors make them (trapezoidal velocity profile; a triangle when the move is too short to reach
full speed), and stops that decelerate.

A :class:`Trajectory` is immutable: a new move replaces the object, so a reader in another
thread always sees one whole trajectory.
"""

import bisect
import math
from dataclasses import dataclass

__all__ = ["Trajectory"]


@dataclass(frozen=True)
class _Piece:
    """Constant acceleration from ``t0``: ``x0 + v0 (t - t0) + a (t - t0)^2 / 2``."""

    t0: float
    x0: float
    v0: float
    a: float

    def at(self, t: float) -> tuple[float, float]:
        dt = t - self.t0
        return self.x0 + self.v0 * dt + 0.5 * self.a * dt * dt, self.v0 + self.a * dt


@dataclass(frozen=True)
class Trajectory:
    """Position of one axis over (monotonic) time: pieces of constant acceleration, then rest.

    Attributes
    ----------
    pieces : tuple
        Consecutive pieces; before the first the axis is at its start, after ``end_time`` at
        ``end``.
    end_time : float
    end : float
    """

    pieces: tuple[_Piece, ...]
    end_time: float
    end: float

    @classmethod
    def at_rest(cls, x: float) -> "Trajectory":
        return cls((), -math.inf, float(x))

    @classmethod
    def move(
        cls, x0: float, x1: float, t0: float, velocity: float, acceleration: float
    ) -> "Trajectory":
        """A move from rest at ``x0`` (time ``t0``) to rest at ``x1``."""
        d = abs(x1 - x0)
        if d == 0:
            return cls.at_rest(x1)
        s = math.copysign(1.0, x1 - x0)
        t_acc = velocity / acceleration
        if d < velocity * t_acc:  # never reaches full speed: a triangle
            t_acc = math.sqrt(d / acceleration)
            velocity = acceleration * t_acc
        t_cruise = (d - velocity * t_acc) / velocity
        up = _Piece(t0, x0, 0.0, s * acceleration)
        x_a, v_a = up.at(t0 + t_acc)
        cruise = _Piece(t0 + t_acc, x_a, v_a, 0.0)
        x_c, _ = cruise.at(t0 + t_acc + t_cruise)
        down = _Piece(t0 + t_acc + t_cruise, x_c, v_a, -s * acceleration)
        return cls((up, cruise, down), t0 + 2 * t_acc + t_cruise, float(x1))

    def _piece(self, t: float) -> _Piece | None:
        i = bisect.bisect_right([p.t0 for p in self.pieces], t) - 1
        return self.pieces[i] if i >= 0 else None

    def position(self, t: float) -> float:
        if t >= self.end_time:
            return self.end
        piece = self._piece(t)
        return self.pieces[0].x0 if piece is None else piece.at(t)[0]

    def velocity(self, t: float) -> float:
        piece = self._piece(t)
        return 0.0 if piece is None or t >= self.end_time else piece.at(t)[1]

    def moving(self, t: float) -> bool:
        return t < self.end_time

    def stopped(self, t: float, acceleration: float) -> "Trajectory":
        """This trajectory halted at ``t``: decelerating at ``acceleration`` to rest."""
        x, v = self.position(t), self.velocity(t)
        if v == 0:
            return self.at_rest(x)
        t_stop = abs(v) / acceleration
        piece = _Piece(t, x, v, -math.copysign(acceleration, v))
        return Trajectory((piece,), t + t_stop, piece.at(t + t_stop)[0])
