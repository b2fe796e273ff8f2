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
        cls,
        x0: float,
        x1: float,
        t0: float,
        velocity: float,
        acceleration: float,
        v0: float = 0.0,
    ) -> "Trajectory":
        """A move from ``x0`` (time ``t0``, velocity ``v0``) to rest at ``x1``.

        A move that starts while the axis moves (a new target given during a move) carries on
        from its velocity, as motor controllers blend one move into the next: the axis first
        brakes to rest when it goes the wrong way or cannot stop in time, else it changes
        speed straight to the new move's.
        """
        d = abs(x1 - x0)
        s = math.copysign(1.0, x1 - x0) if d else math.copysign(1.0, v0 or 1.0)
        u0 = s * v0  # the speed towards the target
        if u0 < 0 or u0 * u0 / (2 * acceleration) > d:  # brake first, then move from rest
            if v0 == 0:
                return cls.at_rest(x1)
            brake = cls.stopped_from(x0, v0, t0, acceleration)
            rest = cls.move(brake.end, x1, brake.end_time, velocity, acceleration)
            return cls((*brake.pieces, *rest.pieces), max(brake.end_time, rest.end_time), x1)
        peak = min(velocity, math.sqrt(acceleration * d + u0 * u0 / 2))
        if u0 > velocity:  # faster than asked: slow down to it first
            peak = velocity
        t_change = abs(peak - u0) / acceleration
        d_change = (
            (peak * peak - u0 * u0) / (2 * acceleration)
            if peak >= u0
            else ((u0 * u0 - peak * peak) / (2 * acceleration))
        )
        t_stop = peak / acceleration
        d_cruise = max(0.0, d - d_change - peak * t_stop / 2)
        t_cruise = d_cruise / peak if peak > 0 else 0.0
        change = _Piece(t0, x0, v0, s * math.copysign(acceleration, peak - u0))
        x_a, v_a = change.at(t0 + t_change)
        cruise = _Piece(t0 + t_change, x_a, v_a, 0.0)
        x_c, _ = cruise.at(t0 + t_change + t_cruise)
        down = _Piece(t0 + t_change + t_cruise, x_c, v_a, -s * acceleration)
        return cls((change, cruise, down), t0 + t_change + t_cruise + t_stop, float(x1))

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
        return self.stopped_from(self.position(t), self.velocity(t), t, acceleration)

    @classmethod
    def stopped_from(cls, x: float, v: float, t: float, acceleration: float) -> "Trajectory":
        """An axis at ``x`` moving at ``v`` at time ``t``, braking at ``acceleration`` to rest."""
        if v == 0:
            return cls.at_rest(x)
        t_stop = abs(v) / acceleration
        piece = _Piece(t, x, v, -math.copysign(acceleration, v))
        return Trajectory((piece,), t + t_stop, piece.at(t + t_stop)[0])
