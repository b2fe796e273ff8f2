"""Configs that cannot work are refused by `validate` and `run` quickly, in one line, exit 2:
alias bombs and oversized files (case 7), buffers that do not fit (case 4), bad Z-LUT files
(case 8)."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from tests.faults._isolated import cli_on_tmpfs
from tests.pipeline import _runner as r

SIM = Path(__file__).resolve().parents[2] / "configs" / "sim.yaml"


def _sim_config(tmp: Path, **sections: dict) -> Path:
    """configs/sim.yaml with some sections changed (merged one level deep), in ``tmp``."""
    cfg = yaml.safe_load(SIM.read_text())
    cfg["output"]["dir"] = str(tmp / "runs")
    return r.write_config(tmp, cfg, name="sim", **sections)


def _refused(done, *needles: str) -> None:
    """Exit 2, one error line holding ``needles``, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


BOMB = """
camera: {driver: sim}
beads:
  rois: &l9 [&l8 [&l7 [&l6 [&l5 [&l4 [&l3 [&l2 [&l1 [1, 2], *l1], *l2, *l2], *l3, *l3],
         *l4, *l4], *l5, *l5], *l6, *l6], *l7, *l7], *l8, *l8]
  reference: [*l9, *l9, *l9, *l9, *l9, *l9, *l9, *l9, *l9, *l9]
"""


@pytest.mark.parametrize("command", ["validate", "run"])
def test_alias_bomb_inside_a_section_is_refused(tmp_path, command):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    _refused(r.cli(command, str(path), cwd=tmp_path, timeout=60), "bomb.yaml", "alias")


def test_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("camera: {driver: sim}\nbeads:\n  rois: &r [[1, 2], *r]\n")
    _refused(r.cli("validate", str(path), cwd=tmp_path, timeout=60), "loop.yaml", "alias")


def test_a_few_aliases_are_fine(tmp_path):
    path = tmp_path / "alias.yaml"
    path.write_text(
        "camera: {driver: sim, settings: &s {width: 256, height: 256}}\n"
        "focus_stage: {driver: sim}\nbeads: {rois: [&b [64, 64], *b]}\n"
    )
    done = r.cli("validate", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("command", ["validate", "run"])
def test_oversized_config_is_refused(tmp_path, command):
    rois = "".join(f"  - [{100 + i % 300}, {100 + i % 200}]\n" for i in range(2_000_000))
    path = tmp_path / "big.yaml"
    path.write_text("camera: {driver: sim}\nbeads:\n rois:\n" + rois)  # ~40 MB
    _refused(r.cli(command, str(path), cwd=tmp_path, timeout=60), "big.yaml", "larger than")


def test_too_many_rois_are_refused(tmp_path):
    rois = [[100 + i % 300, 100] for i in range(10_001)]
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump({"camera": {"driver": "sim"}, "beads": {"rois": rois}}))
    _refused(r.cli("validate", str(path), cwd=tmp_path), "beads.rois", "10000")


@pytest.mark.parametrize(
    "sections",
    [
        {"buffers": {"n_stacks": 100_000}},
        {"buffers": {"images_per_stack": 10_000}},
        {
            "camera": {"driver": "sim", "settings": {"width": 8192, "height": 8192}},
            "buffers": {"n_stacks": 64, "images_per_stack": 10},  # 86 GB
            # a bead given: `run` refuses the same buffers without first detecting beads in
            # 3 rendered 64-Mpixel frames (over a minute of the suite's time)
            "beads": {"rois": [[4096, 4096]]},
        },  # fmt: skip
        {
            "beads": {"rois": [[100 + i % 300, 100] for i in range(5000)]},
            "camera": {"driver": "sim", "settings": {"frame_rate": 100_000}},
        },  # fmt: skip
    ],
    ids=["n_stacks", "images_per_stack", "8192x8192", "5000_rois"],
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_buffers_that_cannot_fit_are_refused_with_the_numbers(tmp_path, command, sections):
    path = _sim_config(tmp_path, **sections)
    done = r.cli(command, str(path), cwd=tmp_path)
    _refused(done, "buffers need", " MB")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("command", ["validate", "run"])
def test_small_dev_shm_is_refused_with_the_numbers(tmp_path, command):
    """configs/sim.yaml in a container's 64 MB /dev/shm: refused, not a Bus error."""
    path = _sim_config(tmp_path)
    done = cli_on_tmpfs(Path("/dev/shm"), "64m", command, str(path), cwd=tmp_path)
    _refused(done, "buffers need", "/dev/shm has 6", "MB free")


@pytest.mark.parametrize("command", ["validate", "run"])
def test_tables_sized_for_a_huge_frame_rate_are_refused(tmp_path, command):
    """frame_rate 1e9 sizes the tables for 5e6 frames (over 500 MB): refused in a 400 MB
    /dev/shm, where configs/sim.yaml itself (about 125 MB) is accepted."""
    plain = r.cli("validate", str(_sim_config(tmp_path)), cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    path = _sim_config(tmp_path, camera={"driver": "sim", "settings": {"frame_rate": 1e9}})
    done = cli_on_tmpfs(Path("/dev/shm"), "400m", command, str(path), cwd=tmp_path)
    _refused(done, "buffers need", "frames", "MB free")


def _zlut_file(path: Path, **changes) -> Path:
    """A Z-LUT file as `magacq calibrate` writes it (2 beads, 32 px ROIs), with ``changes``."""
    from magacq.runfile import QUALITY_DTYPE, save_zlut_file
    from magacq.tracking import ProfileSpec, ZLut

    n_radii = 12
    zlut = ZLut(np.random.default_rng(0).random((2, 5, n_radii)), 0.0, 50.0,
                ProfileSpec(n_radii, 1.0, 1.0))  # fmt: skip
    save_zlut_file(path, zlut=zlut, stage_z_nm=np.arange(5) * 50.0,
                   rois=np.array([[0, 0, 32, 0, 32], [1, 40, 72, 0, 32]]),
                   reference=np.zeros(2, bool), roi_size=32, quality=np.zeros(2, QUALITY_DTYPE),
                   mean_profiles=zlut.planes, attrs={})  # fmt: skip
    with h5py.File(path, "r+") as f:
        for key, value in changes.items():
            if key == "planes":
                del f["planes"]
                f["planes"] = value
            else:
                f.attrs[key] = value
    return path


def _zlut_config(tmp: Path, zlut: Path) -> Path:
    return _sim_config(
        tmp,
        camera={"driver": "sim", "settings": {"width": 128, "height": 96, "n_beads": 2}},
        tracking={"roi_size": 32, "zlut": str(zlut)},
        beads={"rois": [[16, 16], [56, 16]]},
    )


def test_validate_accepts_a_good_zlut(tmp_path):
    path = _zlut_config(tmp_path, _zlut_file(tmp_path / "z.h5"))
    done = r.cli("validate", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "rois, needles",
    [
        ([[16, 16]], ["holds Z-LUTs for 2 beads, this run tracks 1", "bead set differs"]),
        ([[16, 16], [56, 40]], ["bead 1 of this run (ROI corner 40, 24)", "(corner 40, 0)"]),
    ],
)
def test_validate_refuses_a_zlut_of_other_beads_naming_the_difference(tmp_path, rois, needles):
    # issue 28: `run` refused these, `validate` said ok (it checked the count only)
    path = _zlut_config(tmp_path, _zlut_file(tmp_path / "z.h5"))
    data = yaml.safe_load(path.read_text())
    data["beads"]["rois"] = rois
    path.write_text(yaml.safe_dump(data))
    _refused(r.cli("validate", str(path), cwd=tmp_path), *needles)


@pytest.mark.parametrize(
    "damage, needle",
    [
        ("missing", "no such Z-LUT file"),
        ("truncated", "cannot read"),
        ("schema", "not a magacq Z-LUT file"),
        ("planes", "planes"),
        ("roi_size", "px ROIs"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_zlut_file_is_refused_naming_it(tmp_path, command, damage, needle):
    zlut = tmp_path / "z.h5"
    if damage != "missing":
        changes = {
            "schema": {"schema": "something.else"},
            "planes": {"planes": np.zeros((2, 5))},  # 2-D, not (beads, planes, radii)
            "roi_size": {"roi_size": 48},
        }.get(damage, {})
        _zlut_file(zlut, **changes)
    if damage == "truncated":
        zlut.write_bytes(zlut.read_bytes()[:3000])
    path = _zlut_config(tmp_path, zlut)
    _refused(r.cli(command, str(path), cwd=tmp_path), str(zlut), needle)
