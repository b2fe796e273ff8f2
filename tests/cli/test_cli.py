"""The real `magacq` CLI on bad input: one clear line, exit code 2, never a traceback."""

import json
import subprocess
import sys

import pytest
import yaml

from tests.pipeline import _runner as r

GOOD = {"camera": {"driver": "sim", "settings": {"width": 128, "height": 128, "n_beads": 1}}}


def magacq(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*r.MAGACQ, *args], cwd=cwd, env=r.env(), capture_output=True, text=True, timeout=60
    )


def _one_error_line(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


def _write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def _config(tmp_path, **changes):
    data = json.loads(json.dumps(GOOD))
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return _write(tmp_path, yaml.safe_dump(data))


@pytest.mark.parametrize("command", ["run", "validate"])
def test_missing_file(tmp_path, command):
    _one_error_line(magacq(command, str(tmp_path / "nope.yaml")), "nope.yaml", "no such")


def test_empty_file(tmp_path):
    _one_error_line(magacq("run", str(_write(tmp_path, ""))), "c.yaml", "empty")


def test_invalid_yaml_reports_the_line(tmp_path):
    path = _write(tmp_path, "camera:\n  driver: sim\n  settings: {width: 128\n")
    _one_error_line(magacq("validate", str(path)), "c.yaml", "line 4", "invalid YAML")


def test_top_level_not_a_mapping(tmp_path):
    _one_error_line(magacq("validate", str(_write(tmp_path, "- 1\n- 2\n"))), "mapping")


@pytest.mark.parametrize(
    ("key", "value", "needles"),
    [
        ("trackin", {"workers": 1}, ("trackin: unknown key", "did you mean 'tracking'")),
        ("tracking.algoritm", "qi", ("tracking.algoritm", "did you mean 'algorithm'")),
        ("tracking.workers", "two", ("tracking.workers", "integer", "'two'")),
        ("tracking.workers", 0, ("tracking.workers", "greater than or equal to 1")),
        ("tracking.algorithm", "magic", ("tracking.algorithm", "'magic'")),
        ("duration", -1, ("duration", "greater than 0")),
        ("camera.driver", "nosuch", ("camera.driver", "nosuch", "sim")),
        ("camera.settings.widht", 64, ("camera.settings.widht", "did you mean 'width'")),
        ("camera.settings.width", 2, ("camera.settings", "width", "greater than or equal")),
        ("beads.reference", [3], ("beads.reference",)),
    ],
)
def test_bad_values(tmp_path, key, value, needles):
    changes = {key: value}
    if key == "beads.reference":
        changes["beads.rois"] = [[64, 64]]
    path = _config(tmp_path, **changes)
    _one_error_line(magacq("validate", str(path)), "c.yaml", *needles)
    _one_error_line(magacq("run", str(path), "--dry-run"), *needles)


def test_bad_argument_exits_2(tmp_path):
    done = magacq("run", str(_config(tmp_path)), "--duration", "-3")
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_validate_and_dry_run_of_a_good_config(tmp_path):
    path = _config(tmp_path)
    done = magacq("validate", str(path))
    assert done.returncode == 0 and done.stdout.strip() == f"{path}: ok"
    done = magacq("run", str(path), "--dry-run", "--duration", "2.5", "--output", "out")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["duration"] == 2.5 and shown["output"]["dir"] == "out"
    assert shown["camera"]["settings"]["width"] == 128 and shown["tracking"]["algorithm"]
    assert not (tmp_path / "out").exists()  # a dry run acquires and writes nothing


def test_shipped_configs_validate():
    done = magacq("validate", str(r.REPO / "configs" / "sim.yaml"))
    assert done.returncode == 0, done.stderr


def test_drivers_lists_builtin_drivers():
    done = magacq("drivers")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[1]: line for line in done.stdout.splitlines() if line.count("│") >= 3}
    for name in ("sim", "mmcore", "genicam"):
        assert name in rows, done.stdout
        assert " yes " in rows[name] or " no " in rows[name]
    assert " yes " in rows["sim"]


def test_version():
    from magacq import __version__

    done = magacq("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"magacq {__version__}"


def test_schema_is_json_schema_of_the_config():
    done = magacq("schema")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    assert {"camera", "tracking", "beads", "output"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert "on_backlog" in json.dumps(schema)


def test_a_runs_start_up_leaves_scipy_optimize_unimported():
    """What every `magacq run` and command imports before its work (the supervisor, the
    config, the sim camera) leaves scipy.optimize to the analyses that fit: it is the largest
    import there, paid at every run's start, by each command and, under spawn, each child."""
    probe = (
        "import sys, magacq.cli, magacq.pipeline, magacq.pipeline.supervisor, simulators.camera\n"
        "from magacq.pipeline.roster import ROSTER\n"
        "for role in ROSTER.values(): role.target()\n"
        "print(sorted(m for m in sys.modules if m.startswith('scipy.optimize')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=r.env(), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
