"""Protocols as data: force table, recipes, expansion into checked actions, refusals."""

import math

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from magacq.config import validate_config
from magacq.errors import ConfigError
from magacq.protocol import Devices, ForceCurve, Protocol, expand, load_force_table

TABLE = {"heights_mm": [0.5, 1, 2, 3, 4, 6, 8], "forces_pn": [60, 30, 10, 4, 1.5, 0.3, 0.05]}
DEVICES = Devices(
    limits={"height": (0.3, 10.0), "rotation": (-200.0, 200.0)},
    start={"height": 6.0, "rotation": 0.0},
    max_velocity={"height": 5.0, "rotation": 10.0},
)
parse = TypeAdapter(Protocol).validate_python


def test_force_curve_is_monotonic_and_its_own_inverse() -> None:
    curve = ForceCurve(np.array(TABLE["heights_mm"]), np.array(TABLE["forces_pn"]))
    h = np.linspace(0.5, 8.0, 400)
    f = np.array([curve.force(x) for x in h])
    assert (np.diff(f) < 0).all()
    for force in (0.05, 0.07, 0.1, 0.5, 1.0, 3.3, 10.0, 20.0, 59.0):
        assert curve.force(curve.height(force)) == pytest.approx(force, rel=1e-9)
    for height, force in zip(TABLE["heights_mm"], TABLE["forces_pn"], strict=True):
        assert curve.force(height) == pytest.approx(force)  # through the table's points


def test_force_curve_refuses_what_it_cannot_answer() -> None:
    curve = ForceCurve(np.array([1.0, 2.0]), np.array([10.0, 1.0]))
    with pytest.raises(ConfigError, match="outside the force table"):
        curve.height(20.0)
    with pytest.raises(ConfigError, match="outside the force table"):
        curve.force(0.5)
    with pytest.raises(ConfigError, match="fall strictly"):
        ForceCurve(np.array([1.0, 2.0, 3.0]), np.array([10.0, 12.0, 1.0]))
    with pytest.raises(ConfigError, match="> 0"):
        ForceCurve(np.array([1.0, 2.0]), np.array([1.0, 0.0]))


def test_force_table_file(tmp_path) -> None:
    path = tmp_path / "forces.csv"
    path.write_text("# from a calibration\nheight_mm,force_pn\n1,10\n2,4\n3,1\n")
    curve = load_force_table(path.relative_to(tmp_path), tmp_path)
    assert curve.force_range == (1.0, 10.0)
    path.write_text("1,10\n2,x\n")
    with pytest.raises(ConfigError, match="line 2"):
        load_force_table(path)
    with pytest.raises(ConfigError, match="No such file"):
        load_force_table(tmp_path / "missing.csv")


def test_force_extension_goes_up_and_back_down() -> None:
    forces = [0.1, 0.3, 1, 2, 5, 10, 15, 20]
    plan = expand(
        parse({"recipe": "force_extension", "forces_pn": forces, "hold_s": 3,
               "force_table": TABLE}),
        DEVICES,
    )  # fmt: skip
    holds = [a for a in plan.actions if a.kind == "hold"]
    assert [round(a.force_pn, 9) for a in holds] == forces + forces[-2::-1]
    moves = [a for a in plan.actions if a.kind == "move"]
    heights = [dict(a.targets)["height"] for a in moves]
    assert (np.diff(heights[: len(forces)]) < 0).all()  # more force: magnets lower
    assert plan.seconds == pytest.approx(3 * len(holds) + sum(a.seconds for a in moves))
    assert all(a.seconds > 0 for a in moves)  # distance over the device's speed


def test_rotation_curve_twists_both_ways_at_one_force() -> None:
    plan = expand(
        parse({"recipe": "rotation_curve", "force_pn": 1.0, "max_turns": 20, "step_turns": 5,
               "hold_s": 1, "force_table": TABLE}),
        DEVICES,
    )  # fmt: skip
    moves = [dict(a.targets) for a in plan.actions if a.kind == "move"]
    assert list(moves[0]) == ["height"]
    turns = [m["rotation"] for m in moves[1:]]
    assert turns == [-20, -15, -10, -5, 0, 5, 10, 15, 20, 0]
    assert all(a.force_pn == pytest.approx(1.0) for a in plan.actions if a.kind == "hold")


def test_rotation_curve_sweeps_back_for_hysteresis() -> None:
    plan = expand(
        parse({"recipe": "rotation_curve", "force_pn": 1.0, "max_turns": 10, "step_turns": 5,
               "hold_s": 1, "sweep_back": True, "force_table": TABLE}),
        DEVICES,
    )  # fmt: skip
    moves = [dict(a.targets) for a in plan.actions if a.kind == "move"][1:]
    assert [m["rotation"] for m in moves] == [-10, -5, 0, 5, 10, 5, 0, -5, -10, 0]


def test_force_calibration_holds_each_height() -> None:
    plan = expand(
        parse({"recipe": "force_calibration", "heights_mm": [6, 4, 2.5], "hold_s": 2}), DEVICES
    )
    holds = [a for a in plan.actions if a.kind == "hold"]
    assert [a.label for a in holds] == ["6 mm", "4 mm", "2.5 mm"]
    moves = [dict(a.targets)["height"] for a in plan.actions if a.kind == "move"]
    assert moves == [6, 4, 2.5]


def test_force_ramp_follows_the_table_at_the_loading_rate() -> None:
    plan = expand(
        parse({"recipe": "force_ramp", "start_pn": 1, "stop_pn": 10, "loading_rate_pn_s": 0.5,
               "force_table": TABLE}),
        DEVICES,
    )  # fmt: skip
    ramp = next(a for a in plan.actions if a.kind == "ramp")
    t, h = np.array(ramp.path).T
    curve = ForceCurve(np.array(TABLE["heights_mm"]), np.array(TABLE["forces_pn"]))
    f = np.array([curve.force(x) for x in h])
    assert ramp.seconds == pytest.approx(18.0)
    np.testing.assert_allclose(f, 1 + 0.5 * t, rtol=1e-9)  # constant dF/dt at every waypoint
    assert (np.diff(t) <= 0.1 + 1e-12).all()


def test_steps_repeat_and_relative_moves_resolve_to_absolute_targets() -> None:
    plan = expand(
        parse({"steps": [
            {"step": "magnets", "height_mm": 2},
            {"step": "repeat", "times": 3, "steps": [
                {"step": "magnets", "rotation_turns": 5, "relative": True},
                {"step": "hold", "seconds": 1},
            ]},
            {"step": "mark", "label": "done"},
        ]}),
        DEVICES,
    )  # fmt: skip
    rotations = [dict(a.targets).get("rotation") for a in plan.actions if a.kind == "move"]
    assert rotations == [None, 5, 10, 15]
    assert [a.step for a in plan.actions] == [0] + [1] * 6 + [2]
    assert plan.actions[-1].kind == "mark" and plan.actions[-1].label == "done"


@pytest.mark.parametrize(
    ("protocol", "message"),
    [
        ({"steps": [{"step": "magnets", "height_mm": 0.1}]}, "outside the limits 0.3..10 mm"),
        ({"steps": [{"step": "magnets", "force_pn": 5}]}, "needs protocol.force_table"),
        (
            {"steps": [{"step": "magnets", "force_pn": 500}], "force_table": TABLE},
            "outside the force table",
        ),
        ({"steps": [{"step": "focus", "z_nm": 100}]}, "no focus stage"),
        ({"steps": [{"step": "ramp", "axis": "height", "stop": 1, "rate": 50}]}, "top speed"),
        (
            {
                "recipe": "force_clamp",
                "force_pn": 5,
                "duration_s": 1,
                "force_table": TABLE,
                "end_height_mm": 20,
            },
            "end_height_mm: height 20 mm is outside",
        ),
    ],
)
def test_bad_protocols_are_refused_before_anything_moves(protocol, message) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        expand(parse(protocol), DEVICES)


@pytest.mark.parametrize(
    ("protocol", "message"),
    [
        ({"steps": [{"step": "jump"}]}, "jump"),
        ({"steps": [{"step": "hold", "second": 3}]}, "second"),
        ({"recipe": "force_extension", "hold_s": 3}, "forces_pn or heights_mm"),
        ({"steps": [{"step": "magnets", "height_mm": 1, "force_pn": 2}]}, "not both"),
        ({"recipe": "force_clamp", "force_pn": -1, "duration_s": 1}, "greater than 0"),
    ],
)
def test_malformed_protocols_fail_validation(protocol, message) -> None:
    with pytest.raises(ValidationError, match=message):
        parse(protocol)
    with pytest.raises(ConfigError, match="protocol"):  # and through the run config, one line
        validate_config({"camera": {"driver": "sim"}, "protocol": protocol})


def test_scripts_are_checked_without_running_them(tmp_path) -> None:
    script = tmp_path / "p.py"
    script.write_text("raise SystemExit('top-level code must not run at validation')\n"
                      "def protocol(api):\n    api.hold(1)\n")  # fmt: skip
    plan = expand(parse({"script": "p.py"}), DEVICES, base=tmp_path)
    assert plan.script is not None and plan.actions == ()
    with pytest.raises(ConfigError, match="defines no function 'main' \\(it defines protocol\\)"):
        expand(parse({"script": "p.py", "function": "main"}), DEVICES, base=tmp_path)
    with pytest.raises(ConfigError, match="No such file"):
        expand(parse({"script": "nope.py"}), DEVICES, base=tmp_path)
    script.write_text("def protocol(api:\n")
    with pytest.raises(ConfigError, match="line 1"):
        expand(parse({"script": "p.py"}), DEVICES, base=tmp_path)


def test_a_stage_without_velocity_refuses_one_and_is_stepped_along_ramps() -> None:
    why = "magnet rotation stage 'R' takes no velocity"
    fixed = Devices(DEVICES.limits, DEVICES.start, {"height": 5.0}, {"rotation": why})
    curve = parse({"recipe": "rotation_curve", "height_mm": 3, "max_turns": 2, "step_turns": 1,
                   "hold_s": 1, "velocity": 1})  # fmt: skip
    with pytest.raises(ConfigError, match=f"steps.1: velocity 1 turns/s asked, but {why}"):
        expand(curve, fixed)
    ramp = parse({"steps": [{"step": "ramp", "axis": "rotation", "stop": 10, "rate": 5}]})
    (steps,) = expand(ramp, fixed).actions
    (ramped,) = expand(ramp, DEVICES).actions
    assert len(steps.path) == 21 and len(ramped.path) == 2  # 0.1 s segments; one move
    assert steps.path[-1] == ramped.path[-1] == (2.0, 10.0)


def test_hold_reports_no_force_without_a_table() -> None:
    plan = expand(parse({"steps": [{"step": "hold", "seconds": 2}]}), DEVICES)
    assert math.isnan(plan.actions[0].force_pn) and plan.seconds == 2


def test_magacq_recipes_lists_every_recipe_and_parameter(tmp_path) -> None:
    from magacq.protocol import RECIPES
    from tests.pipeline import _runner as r

    done = r.cli("recipes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name, model in RECIPES.items():
        assert f"protocol: {{recipe: {name}, ...}}" in done.stdout
        for field in model.model_fields:
            assert field == "recipe" or field in done.stdout, (name, field)
    assert "Seconds at each height" in done.stdout and "required" in done.stdout
