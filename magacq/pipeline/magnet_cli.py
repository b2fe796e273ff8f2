"""``magacq magnets``: move the magnets of a live run through its command channel, or, with no
run live, the config's magnets directly (a motor keeps its position afterwards)."""

from typing import Any

from magacq.config import RunConfig
from magacq.errors import ConfigError, RunError
from magacq.pipeline.channels.motor_channel import MotorControl

Moves = list[tuple[str, float]]


def move_magnets(
    cfg: RunConfig, moves: Moves, *, relative: bool, velocity: float | None, stop: bool,
    namespace: str | None, timeout: float,
) -> tuple[float, float]:  # fmt: skip
    """Make the moves (in order, each to its end) or the stop; return (height mm, rotation).

    Parameters
    ----------
    namespace : str or None
        The live run whose magnets to move; None: open the config's magnets here.

    Raises
    ------
    ConfigError
        The config has no magnets, or a move the magnets refuse (outside the limits, ...).
    RunError
        A move failed, or the run has no magnets.
    """
    if cfg.magnets is None:
        raise ConfigError("the config has no 'magnets' section")
    if namespace is not None:
        return _through_run(namespace, moves, relative, velocity, stop, timeout)
    return _directly(cfg, moves, relative, velocity, stop, timeout)


def _through_run(
    namespace: str, moves: Moves, relative: bool, velocity: float | None, stop: bool,
    timeout: float,
) -> tuple[float, float]:  # fmt: skip
    from magacq.pipeline.channels.motor_channel import MotorError

    try:
        ctl = MotorControl(namespace, by="cli")
    except MotorError as exc:
        raise RunError(str(exc)) from None
    with ctl:
        try:
            if stop:
                ctl.stop(wait=True, timeout=timeout)
            for axis, value in moves:
                send = ctl.move_by if relative else ctl.move_to
                send(axis, value, velocity=velocity, wait=True, timeout=timeout)
        except MotorError as exc:
            raise RunError(str(exc)) from None
        _, h, r, _ = ctl.position()
    return h, r


def _directly(
    cfg: RunConfig, moves: Moves, relative: bool, velocity: float | None, stop: bool,
    timeout: float,
) -> tuple[float, float]:  # fmt: skip
    from hal import HalError, UnsupportedSettingError
    from magacq.pipeline.hardware import open_accessory, open_camera

    m = cfg.magnets
    assert m is not None
    cam: Any = None
    mag: Any = None
    try:
        if m.driver == cfg.camera.driver:  # the magnets share the camera's connection
            cam = open_camera(cfg.camera)
        mag = open_accessory("magnets", m, cam, cfg.camera.driver)
        if stop:
            mag.stop()
        for axis, value in moves:
            (mag.move_by if relative else mag.move_to)(axis, value, velocity=velocity)
            mag.wait(timeout)
        mag.wait(timeout)
        pos = mag.positions()
        return pos.height_mm, pos.rotation_turns
    except UnsupportedSettingError as exc:
        raise ConfigError(f"magnets: {exc}") from None
    except HalError as exc:
        raise RunError(f"magnets: {exc}") from None
    finally:
        if mag is not None:
            mag.close()
        if cam is not None:
            cam.close()
