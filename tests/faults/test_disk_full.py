"""The output disk fills during a run (issue 18, case 3): "disk full" said in one line, exit 1,
the file closed with state ``failed`` and the error, what was written before intact; the run
file's ``video_frames`` lists exactly the frames of the video file, whichever process the full
disk stopped first."""

import shlex

import h5py
import numpy as np

from tests.faults._isolated import cli_on_tmpfs
from tests.pipeline import _runner as r


def _fill_the_disk(tmp_path, video: dict) -> tuple[dict, dict]:
    """A 20 s run recording every raw frame (46 kB) onto a 6 MB tmpfs, full in well under a
    second: checks the exit, the one error line, the run file closed as failed; returns the run
    file's and the video file's datasets."""
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    kept.mkdir()
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
        run = {name: f[name][:] for name in ("frames", "tracks", "video", "video_frames",
                                             "video_skipped")}  # fmt: skip
        run["attrs"] = dict(f.attrs)
    with h5py.File(files[0].with_name(files[0].stem + ".video.h5"), "r") as f:
        vid = {"video": f["video"][:], "video_seq": f["video_seq"][:]}
    return run, vid


def _check_listing(run: dict, vid: dict) -> None:
    """Row k of ``video_frames`` is frame k of the video: the frame stored with the video's
    sequence number (row seq of ``frames``), in the run file's ``frames``, not skipped too."""
    video, listed, frames = run["video"], run["video_frames"], run["frames"]
    assert len(video) == len(listed) == len(vid["video_seq"]) > 0
    assert run["attrs"]["video_frames"] == len(listed)
    seq = vid["video_seq"]["seq"]
    assert (seq < len(frames)).all()
    assert (listed["frame"] == frames["frame"][seq]).all()
    assert (listed["timestamp"] == vid["video_seq"]["timestamp"]).all()
    assert (np.diff(listed["frame"]) > 0).all()
    assert not np.isin(run["video_skipped"]["frame"], listed["frame"]).any()
    every_stored = np.concatenate([listed["frame"], run["video_skipped"]["frame"]])
    assert np.isin(frames["frame"], every_stored).all()  # kept or skipped, whoever stopped
    assert (video.reshape(len(video), -1).max(axis=1) > 0).all()  # real frames, not holes


def test_full_disk_is_named_and_the_file_closed_as_failed(tmp_path):
    # 4 MiB reserved: the recorder stops first (the writer may still find too little room)
    run, vid = _fill_the_disk(tmp_path, {"mode": "frames", "reserve_mb": 4})
    assert len(run["frames"]) > 0 and len(run["tracks"]) > 0
    assert np.isin(run["tracks"]["frame"], run["frames"]["frame"]).all()
    _check_listing(run, vid)


def test_a_writer_stopped_first_by_the_full_disk_still_lists_the_whole_video(tmp_path):
    """1 MiB reserved, less than the room the writer keeps to close its file: the writer stops
    first, and the recorder, slowed down, records its queued stacks after it: frames the writer
    never heard of, listed from the video file once both ended."""
    video = {"mode": "frames", "reserve_mb": 1, "debug_delay_s": 0.03}
    run, vid = _fill_the_disk(tmp_path, video)
    assert "disk full: no space left" in run["attrs"]["error"]  # the writer's own words
    _check_listing(run, vid)
