"""The output disk fills during a run (issue 18, case 3): "disk full" said in one line, exit 1,
the file closed with state ``failed`` and the error, what was written before intact."""

import shlex

import h5py
import numpy as np

from tests.faults._isolated import cli_on_tmpfs
from tests.pipeline import _runner as r


def test_full_disk_is_named_and_the_file_closed_as_failed(tmp_path):
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    kept.mkdir()
    # every raw frame (46 kB) is saved: a 6 MB disk is full in well under a second
    video = {"mode": "frames", "reserve_mb": 4}  # the recorder stops first: the writer closes
    config = r.write_config(tmp_path, output={"dir": str(disk), "video": video}, duration=20)
    done = cli_on_tmpfs(
        disk, "6m", "run", str(config), cwd=tmp_path,
        after=f"cp -a {shlex.quote(str(disk))}/. {shlex.quote(str(kept))}/",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "disk full" in errors[0], done.stderr
    files = sorted(p for p in kept.glob("*.h5") if not p.name.endswith(".video.h5"))
    assert len(files) == 1, sorted(kept.iterdir())
    assert not list(kept.glob(".*reserve"))  # the reserve went back
    with h5py.File(files[0], "r") as f:  # closed: readable without SWMR
        assert f.attrs["state"] == "failed"
        assert "disk full" in f.attrs["error"]
        frames, tracks = f["frames"][:], f["tracks"][:]
        video, video_frames = f["video"][:], f["video_frames"][:]
    assert len(frames) > 0 and len(tracks) > 0 and len(video) > 0
    assert len(video) == len(video_frames)
    assert np.isin(tracks["frame"], frames["frame"]).all()
    # (raw frames reach the writer before their stack's `frames` rows: the last few may have
    # no row yet when the disk fills)
    assert (np.diff(video_frames["frame"]) > 0).all()
    assert (video.reshape(len(video), -1).max(axis=1) > 0).all()  # real frames, not holes
