"""`magacq retrack` end to end: the real CLI on a real recorded run, on Dask (a LocalCluster, and
a scheduler started separately), resumed after being killed, bad inputs refused with exit 2."""

import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

from tests.pipeline import _runner as r


def _sorted_tracks(path, frames=None) -> np.ndarray:
    with h5py.File(path, "r", swmr=True) as f:
        tracks = f["tracks"][:]
    if frames is not None:
        tracks = tracks[np.isin(tracks["frame"], frames)]
    return np.sort(tracks, order=["frame", "bead_id"])


def _assert_same_as_live(recorded, new) -> None:
    with h5py.File(recorded, "r") as f:
        frames = f["video_frames"]["frame"]
    live, again = _sorted_tracks(recorded, frames), _sorted_tracks(new)
    assert len(live) == len(again) == 2 * len(frames) > 0
    for name in live.dtype.names:
        np.testing.assert_array_equal(live[name], again[name], err_msg=name)
    assert np.isfinite(again["z_nm"]).mean() > 0.9  # the Z-LUT was used
    with h5py.File(new, "r") as f:
        assert f.attrs["schema"] == "magacq.run" and f.attrs["state"] == "complete"
        assert f.attrs["frames_tracked"] == len(frames)
        assert set(f) >= {"tracks", "frames", "dropped", "rois", "truth", "retracked"}


def test_same_tracks_as_the_live_run_on_a_local_cluster(recorded, zlut, tmp_path):
    out = tmp_path / "new.h5"
    done = r.cli("retrack", str(recorded), "--zlut", str(zlut), "--out", str(out),
                 "--workers", "2", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "re-tracking" in done.stderr and f"saved {out}" in done.stdout
    _assert_same_as_live(recorded, out)
    again = r.cli("retrack", str(recorded), "--zlut", str(zlut), "--out", str(out), cwd=tmp_path)
    assert again.returncode == 0 and "already re-tracked" in again.stderr


def test_roi_crops_give_the_same_tracks_as_the_live_run(recorded_rois, zlut, tmp_path):
    with h5py.File(recorded_rois, "r") as f:
        assert "roi_video" in f and "video" not in f
        assert f["roi_video"].shape[1:] == (2, 32, 32)
    out = tmp_path / "new.h5"
    done = r.cli("retrack", str(recorded_rois), "--zlut", str(zlut), "--out", str(out),
                 "--workers", "1", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    _assert_same_as_live(recorded_rois, out)


def test_on_a_separately_started_scheduler(recorded, zlut, tmp_path, dask_cluster):
    out = tmp_path / "new.h5"
    done = r.cli("retrack", str(recorded), "--zlut", str(zlut), "--out", str(out),
                 "--scheduler", dask_cluster, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "worker thread(s) at " + dask_cluster in done.stderr
    _assert_same_as_live(recorded, out)


def test_killed_retrack_resumes(recorded, zlut, tmp_path, dask_cluster):
    """SIGKILL the client mid-way (one frame per task: hundreds of tasks); the same command
    finishes the job from the stacks done, with no stack tracked twice."""
    out = tmp_path / "new.h5"
    args = ["retrack", str(recorded), "--zlut", str(zlut), "--out", str(out),
            "--scheduler", dask_cluster, "--stack-frames", "1"]  # fmt: skip
    proc = subprocess.Popen([*r.MAGACQ, *args], cwd=tmp_path, env=r.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    part = tmp_path / "new.h5.part"
    deadline = time.monotonic() + 120
    done_before = 0
    while done_before < 5:
        assert proc.poll() is None and time.monotonic() < deadline, "finished before the kill"
        try:
            with h5py.File(part, "r", swmr=True) as f:
                done_before = len(f["retracked"])
        except (OSError, KeyError):  # not there yet, or being created
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert part.exists() and not out.exists()
    done = r.cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    _assert_same_as_live(recorded, out)
    with h5py.File(out, "r") as f:
        stacks = f["retracked"][:]
    assert len(np.unique(stacks["start"])) == len(stacks)  # each stack once
    assert not part.exists() and not (tmp_path / "new.h5.resume").exists()


def _error_line(done) -> str:
    lines = [ln for ln in done.stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_truncated_or_damaged_run_file_exits_2(recorded, tmp_path):
    cut = tmp_path / "cut.h5"
    cut.write_bytes(recorded.read_bytes()[: recorded.stat().st_size // 2])
    done = r.cli("retrack", str(cut), cwd=tmp_path)
    assert done.returncode == 2 and "cut.h5" in _error_line(done)
    # a damaged chunk in the middle of the video: found when a task reads it
    damaged = tmp_path / "damaged.h5"  # the video in the file itself (the link would dangle)
    damaged.write_bytes(recorded.read_bytes())
    with h5py.File(recorded, "r") as f:
        data = f["video"][:]
    with h5py.File(damaged, "r+") as f:
        del f["video"]
        f.create_dataset("video", data=data, chunks=(1, *data.shape[1:]), compression="gzip")
        info = f["video"].id.get_chunk_info(len(data) // 2)
    raw = bytearray(damaged.read_bytes())
    raw[info.byte_offset : info.byte_offset + info.size] = b"\xff" * info.size
    damaged.write_bytes(bytes(raw))
    done = r.cli("retrack", str(damaged), "--workers", "1", cwd=tmp_path)
    assert done.returncode == 2
    assert "damaged.h5: recorded frames" in _error_line(done) and "unreadable" in done.stderr


def test_bad_arguments_exit_2(recorded, zlut, tmp_path):
    novideo = tmp_path / "novideo.h5"
    novideo.write_bytes(recorded.read_bytes())
    with h5py.File(novideo, "r+") as f:
        del f["video"]
    cases = [
        (["retrack", str(tmp_path / "nope.h5")], "no such run file"),
        (["retrack", str(novideo)], "no recorded video"),
        (["retrack", str(recorded), "--method", "magic"], "--method 'magic'"),
        (["retrack", str(recorded), "--out", str(recorded)], "the run file itself"),
        (["retrack", str(recorded), "--out", str(zlut)], "exists"),
        (["retrack", str(recorded), "--zlut", str(recorded)], "not a magacq Z-LUT file"),
        (["retrack", str(recorded), "--scheduler", "tcp://127.0.0.1:1"], "cannot connect"),
    ]
    for args, message in cases:
        done = r.cli(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert message in _error_line(done), (args, done.stderr)


@pytest.mark.parametrize("method", ["centroid"])
def test_another_method(recorded, tmp_path, method):
    """--method changes the algorithm (centroid: no z) and the config the new file records."""
    out = tmp_path / "c.h5"
    done = r.cli("retrack", str(recorded), "--method", method, "--out", str(out),
                 "--workers", "1", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    tracks = _sorted_tracks(out)
    assert np.isnan(tracks["z_nm"]).all() and np.isfinite(tracks["x_nm"]).all()
    with h5py.File(out, "r") as f:
        assert f'"algorithm": "{method}"' in f.attrs["config"]
