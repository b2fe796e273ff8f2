"""`magacq validate` loads the Micro-Manager configuration as `run` does, taking no frame:
what `run` would refuse, it refuses with one line and exit 2."""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators.mm_adapter import DEVICE_INTERFACE_VERSION, LIBRARY_NAME, build_adapter
from tests.mm_adapter import USER_CFG
from tests.pipeline import _runner as r

OLD_ADAPTER = """
#define API extern "C" __attribute__((visibility("default")))
API void InitializeModuleData() {}
API void* CreateDevice(const char*) { return nullptr; }
API void DeleteDevice(void*) {}
API long GetModuleVersion() { return 10; }
API long GetDeviceInterfaceVersion() { return 70; }
API unsigned GetNumberOfDevices() { return 0; }
API bool GetDeviceName(unsigned, char*, unsigned) { return false; }
API bool GetDeviceType(const char*, int*) { return false; }
API bool GetDeviceDescription(const char*, char*, unsigned) { return false; }
"""


def _config(tmp: Path, mm_path: Path, **changes: Any) -> Path:
    """A run on MagacqUser.cfg with focus, magnets without velocity and a protocol;
    ``changes`` by dotted key (``camera.settings.camera="ZSeq"``)."""
    core = {"mm_path": [str(mm_path)], "config_file": str(USER_CFG)}
    cfg: dict[str, Any] = {
        "camera": {
            "driver": "mmcore",
            "settings": {
                **core,
                "exposure_ms": 5,
                "presets": {"Channel": "Beads"},
                "properties": {"BeadCount": 1},
            },
        },  # fmt: skip
        "focus_stage": {"driver": "mmcore", "settings": {"limits_nm": [-40000, 40000]}},
        "magnets": {
            "driver": "mmcore",
            "settings": {"height_stage": "MagnetZ", "rotation_stage": "MagnetR"},
            "height_mm": 5.0,
        },
        "protocol": {
            "steps": [
                {"step": "magnets", "height_mm": 3.0, "rotation_turns": 2.0},
                {"step": "focus", "z_nm": 1000.0},
            ]
        },  # fmt: skip
        "tracking": {"workers": 1, "roi_size": 32, "algorithm": "com"},
        "beads": {"rois": [[128, 128]]},
        "output": {"dir": str(tmp / "runs")},
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        node[last] = value
    path = tmp / "mm.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(cfg))))
    return path


def _validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*r.MAGACQ, "validate", str(path)],
        env=r.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_good_config_validates_with_its_protocol(tmp_path: Path, mm_path: Path) -> None:
    """Magnet stages without velocity: the protocol is checked and shown, nothing moves."""
    done = _validate(_config(tmp_path, mm_path))
    assert done.returncode == 0, done.stderr
    assert "protocol: 2 actions" in done.stdout and done.stdout.rstrip().endswith(": ok")


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"camera.settings.camera": "ZSeq"}, "'ZSeq' is a stage, not a camera device"),
        ({"camera.settings.properties": {"PixelType": "32bit"}}, "32-bit float pixels"),
        ({"camera.settings.presets": {"Channel": "FITC"}}, "no preset 'FITC'; its presets"),
        ({"camera.settings.properties": {"Nope": {"X": 1}}}, "no device 'Nope' is loaded"),
        ({"camera.settings.binning": 3}, "Cam.Binning = '3' is not allowed"),
        ({"magnets.settings.height_stage": "XY"}, "magnets: 'XY' is an XY stage, not a magnet"),
        ({"focus_stage.settings.stage": "XY"}, "focus_stage: 'XY' is an XY stage, not a focus"),
        ({"magnets.settings.height_limits_mm": [0.1, 5]}, "reach beyond the device's own"),
        (
            {"protocol.steps": [{"step": "magnets", "rotation_turns": 1.0, "velocity": 2}]},
            "protocol.steps.0: velocity 2 turns/s asked, but magnet rotation stage 'MagnetR' "
            "takes no velocity",
        ),
    ],
)
def test_what_run_would_refuse_is_refused(
    tmp_path: Path, mm_path: Path, changes: dict[str, Any], needle: str
) -> None:
    done = _validate(_config(tmp_path, mm_path, **changes))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"focus_stage.settings.stage": "Cam"}, "focus_stage: 'Cam' is a camera, not a focus"),
        ({"magnets.settings.velocity_property": "Velocity"},
         "magnets: magnet height stage 'MagnetZ' has no property 'Velocity'"),
    ],
)  # fmt: skip
def test_run_names_the_device_it_refuses(
    tmp_path: Path, mm_path: Path, changes: dict[str, Any], needle: str
) -> None:
    """As validate does, exit 2, one line naming the stage (not the camera); no run file."""
    done = r.run(_config(tmp_path, mm_path, **changes))
    assert done.returncode == 2, (done.stdout, done.stderr)
    errors = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], done.stderr
    assert "Traceback" not in done.stderr and not list((tmp_path / "runs").iterdir())


def _logged_hardware(tmp: Path, moves: Path) -> Path:
    """MagacqUser.cfg whose magnet height stage appends every move's target to ``moves``."""
    text = USER_CFG.read_text()
    init = "Property,Core,Initialize,1\n"
    path = tmp / "logged.cfg"
    path.write_text(text.replace(init, f"Property,MagnetZ,MoveLog,{moves}\n{init}"))
    return path


def test_a_velocity_asked_of_a_stage_without_one_is_refused_before_anything_moves(
    tmp_path: Path, mm_path: Path
) -> None:
    """validate and run refuse it with the same line; the run moves nothing, leaves no file."""
    moves = tmp_path / "moves.txt"
    hardware = str(_logged_hardware(tmp_path, moves))
    asks = [{"step": "magnets", "height_mm": 3.0, "velocity": 0.5}]
    path = _config(tmp_path, mm_path, **{"camera.settings.config_file": hardware,
                                         "protocol.steps": asks})  # fmt: skip
    for command in ("validate", "run"):
        done = subprocess.run([*r.MAGACQ, command, str(path)], env=r.env(), capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()  # run: its INFO log lines, then the error
        assert [x for x in lines if x.startswith("error:")] == lines[-1:], done.stderr
        assert "Traceback" not in done.stderr
        assert lines[-1].startswith(
            "error: protocol.steps.0: velocity 0.5 mm/s asked, but magnet height stage "
            "'MagnetZ' takes no velocity: the magnets' settings name no velocity_property"
        ), lines[-1]
    assert not moves.exists()  # not even to the config's start height
    assert not list((tmp_path / "runs").iterdir())
    # without the velocity it runs: to the start height, the move, a ramp stepped at its rate
    ramp = {"step": "ramp", "axis": "height", "stop": 4.0, "rate": 2.0}
    steps = [{"step": "magnets", "height_mm": 3.0}, ramp]
    path = _config(tmp_path, mm_path, **{"camera.settings.config_file": hardware,
                                         "protocol.steps": steps})  # fmt: skip
    done = r.run(path)
    assert done.returncode == 0, done.stderr
    um = [float(line) for line in moves.read_text().split()]
    assert um[:2] == [5000.0, 3000.0] and um[-1] == 4000.0
    assert len([u for u in um if 3000 < u < 4000]) >= 3, um  # waypoints, not one move


def test_an_adapter_for_another_device_interface_is_refused(tmp_path: Path, mm_path: Path) -> None:
    """A real library with the module functions of device interface 70, none of its devices."""
    adapters = tmp_path / "adapters"
    adapters.mkdir()
    source = tmp_path / "old.cpp"
    source.write_text(OLD_ADAPTER)
    cxx = os.environ.get("CXX") or "g++"
    subprocess.run([cxx, "-shared", "-fPIC", str(source), "-o", str(adapters / LIBRARY_NAME)],
                   check=True, timeout=120)  # fmt: skip
    done = _validate(_config(tmp_path, mm_path, **{"camera.settings.mm_path": [str(adapters)]}))
    assert done.returncode == 2, (done.stdout, done.stderr)
    line = done.stderr.strip()
    assert "camera: Micro-Manager failed to load" in line
    required = f"MMCore requires {DEVICE_INTERFACE_VERSION}; device adapter has 70"
    assert f"Incompatible device interface version ({required})" in line
    assert "rebuild the adapter against that Micro-Manager version" in line


def test_the_shipped_config_validates() -> None:
    build_adapter()  # configs/mmcore.yaml names the default build directory
    done = subprocess.run(
        [*r.MAGACQ, "validate", "configs/mmcore.yaml"],
        cwd=r.REPO,
        env=r.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
