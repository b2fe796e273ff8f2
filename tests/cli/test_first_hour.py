"""What a new user meets first, through the real CLI: paths that resolve one way, one clear line
(exit 2) for every mistake caught before the run starts, and help that reads as prose."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from magacq._platform import is_root
from tests.cli.test_cli import GOOD, _one_error_line, magacq
from tests.pipeline import _runner as r

TABLE = r.REPO / "configs" / "force_table_m270.csv"
ROI_RUN = {**GOOD, "beads": {"rois": [[64, 64]]}, "tracking": {"workers": 1, "roi_size": 32},
           "buffers": {"n_stacks": 8, "images_per_stack": 5}, "duration": 1}  # fmt: skip


def _write(folder, data: dict, name: str = "c.yaml"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return path


def _force_protocol(table: str) -> dict:
    return {**GOOD, "magnets": {"driver": "sim", "settings": {"bead_type": "M270"}},
            "protocol": {"recipe": "force_clamp", "force_pn": 5, "duration_s": 1,
                         "force_table": table}}  # fmt: skip


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    conf = tmp_path / "conf"
    shutil.copy(TABLE, tmp_path / "table.csv")
    data = {**_force_protocol("../table.csv"), "tracking": {"zlut": "lut.h5"}}
    path = _write(conf, data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # the Z-LUT is looked for beside the config, not in the working directory
    _one_error_line(magacq("validate", "../conf/c.yaml", cwd=elsewhere), str(conf / "lut.h5"))
    del data["tracking"]
    _write(conf, data)
    done = magacq("validate", "../conf/c.yaml", cwd=elsewhere)
    assert done.returncode == 0, done.stderr  # the force table, one folder above the config
    done = magacq("run", str(path), "--dry-run", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    shown, _ = json.JSONDecoder().raw_decode(done.stdout)  # the config, then the protocol
    assert shown["output"]["dir"] == str(conf / "runs")


def test_a_copied_shipped_config_finds_its_force_table_only_beside_it(tmp_path):
    shutil.copy(r.REPO / "configs" / "force_extension.yaml", tmp_path / "fe.yaml")
    _one_error_line(magacq("validate", "fe.yaml", cwd=tmp_path), str(tmp_path / TABLE.name))
    done = magacq("validate", str(r.REPO / "configs" / "force_extension.yaml"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (b"\x89HDF\r\n\x1a\n\x00\xff\xfe binary", ("t.csv", "not a text file")),
        (b"height_mm,force_pn\n1,20\n2,10\n3,12\n4,1\n", ("t.csv", "line 4", "fall strictly")),
        (b"1,20\n2,-1\n", ("t.csv", "line 2", "> 0")),
    ],
)
def test_a_bad_force_table_is_named_with_its_row(tmp_path, content, needles):
    (tmp_path / "t.csv").write_bytes(content)
    path = _write(tmp_path, _force_protocol("t.csv"))
    _one_error_line(magacq("validate", str(path)), *needles)


def test_a_wrong_key_in_a_recipe_suggests_the_right_one(tmp_path):
    data = {**GOOD, "magnets": {"driver": "sim"},
            "protocol": {"recipe": "rotation_curve", "turns": 3, "step_turns": 1,
                         "hold_s": 1}}  # fmt: skip
    path = _write(tmp_path, data)
    _one_error_line(magacq("validate", str(path)), "rotation_curve.turns", "'max_turns'")


def test_an_output_dir_that_is_a_file_or_cannot_be_made_is_refused(tmp_path):
    (tmp_path / "afile").write_text("")
    path = _write(tmp_path, ROI_RUN)
    _one_error_line(
        magacq("run", str(path), "--output", "afile", cwd=tmp_path), "afile", "is a file"
    )
    _one_error_line(
        magacq("run", str(path), "--output", "afile/sub", cwd=tmp_path),
        "afile/sub",
        "cannot create",
    )


@pytest.mark.skipif(is_root(), reason="root writes into a read-only directory")
def test_a_read_only_output_dir_is_refused(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    path = _write(tmp_path, ROI_RUN)
    _one_error_line(magacq("run", str(path), "--output", "ro", cwd=tmp_path), "ro", "cannot write")


def test_a_namespace_segments_cannot_use_is_refused_before_the_camera(tmp_path):
    path = _write(tmp_path, ROI_RUN)
    done = subprocess.run([*r.MAGACQ, "run", str(path)], env={**r.env(), "MAGACQ_NAMESPACE": "a.b"},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    _one_error_line(done, "MAGACQ_NAMESPACE='a.b'", "'.'")
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no ulimit -n (nor preexec_fn)")
def test_an_open_file_limit_too_low_is_refused(tmp_path):
    path = _write(tmp_path, ROI_RUN)

    def low_limit() -> None:
        import resource  # POSIX only

        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    done = subprocess.run([*r.MAGACQ, "run", str(path)], env=r.env(), capture_output=True,
                          text=True, timeout=60, preexec_fn=low_limit)  # fmt: skip
    _one_error_line(done, "ulimit -n", "64", "tracking.workers")


@pytest.mark.skipif(not is_root() or not shutil.which("setpriv"), reason="needs root")
def test_a_process_limit_too_low_is_refused_before_anything_starts():
    """Issue 26: under ``ulimit -u 32`` (RLIMIT_NPROC; a user, not root, whom it holds) a run
    spun for ever in OpenBLAS, deaf to Ctrl-C, once the OS refused its threads; `run` and
    `validate` now refuse it first, with one line."""
    shared = Path(tempfile.mkdtemp(prefix="magacq-nproc-"))
    try:
        shared.chmod(0o777)
        path = _write(shared, ROI_RUN)
        path.chmod(0o644)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

        def low_limit() -> None:  # kept across setpriv's change of user
            import resource  # POSIX only

            resource.setrlimit(resource.RLIMIT_NPROC, (32, 32))

        for command in ("run", "validate"):
            done = subprocess.run([*nobody, *r.MAGACQ, command, str(path)], cwd=shared,
                                  env={**r.env(), "HOME": str(shared)}, capture_output=True,
                                  text=True, timeout=60, preexec_fn=low_limit)  # fmt: skip
            _one_error_line(done, "ulimit -u", "32", "tracking.workers")
        assert not (shared / "runs").exists()
    finally:
        shutil.rmtree(shared)


COMMANDS = ["run", "calibrate", "retrack", "analyze", "recipes", "validate", "schema", "drivers",
            "compile", "clean", "magnets", "view"]  # fmt: skip


def test_help_shows_flags_without_values_and_one_line_per_command():
    done = magacq("--help")
    assert done.returncode == 0
    listed = done.stdout.split("Commands:")[1].strip().splitlines()
    assert [line.split()[0] for line in listed] == COMMANDS  # one line each, none broken
    assert not any(line.rstrip().endswith("...") for line in listed), done.stdout
    for command in COMMANDS:
        done = magacq(command, "--help")
        assert done.returncode == 0, done.stderr
        assert "<bool>" not in done.stdout and "--help " in done.stdout, done.stdout
        for line in done.stdout.splitlines():
            if line.strip().startswith(("--debug", "--help", "--relative", "--stop")):
                assert "<" not in line, line


def test_the_output_dir_removed_during_a_run_ends_it_with_one_line(tmp_path):
    path = _write(tmp_path, {**ROI_RUN, "duration": 60, "output": {"dir": "gone"}})
    proc = r.start(path)
    r.wait_for_status(proc, "frames", 50)
    shutil.rmtree(tmp_path / "gone")
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "Exception in thread" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(tmp_path / "gone") in last, err
