"""The recorder end to end (real `magacq run`, processes, shared memory, files): the video it
keeps is the camera's pixels exactly (a replayed recording as the camera), in each mode;
back-pressure as configured; a SIGKILLed recorder; a full disk."""

import signal

import h5py
import hdf5plugin  # noqa: F401  (the lz4 filter)
import numpy as np
import pytest

from tests.faults._isolated import mounted
from tests.pipeline import _runner as r
from tests.recorded import sim_frames, write_run_file

BEADS = [[24, 32], [72, 32]]
N = 40  # recorded frames, 8 stacks of 5


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A recording to replay as the camera: its frames are what the recorder must keep."""
    frames, _ = sim_frames(N)
    path = tmp_path_factory.mktemp("source") / "source.h5"
    return write_run_file(path, frames, np.arange(N) * 0.005), frames


def _config(tmp_path, src, video, camera=None, **sections):
    return r.write_config(
        tmp_path,
        **{"camera": {"driver": "replay", "settings": {"file": str(src), **(camera or {})}},
           "beads": {"rois": BEADS},
           "buffers": {"n_stacks": 32, "images_per_stack": 5},
           "output": {"dir": str(tmp_path / "runs"), "video": video},
           "duration": None} | sections,
    )  # fmt: skip


def _same_frames(a, b) -> None:
    for name in ("frame", "timestamp"):
        np.testing.assert_array_equal(a[name], b[name])


def _run(tmp_path, src, video, **kw):
    done = r.run(_config(tmp_path, src, video, **kw))
    assert done.returncode == 0, done.stderr
    return r.read(r.output_file(tmp_path))


def test_every_frame_as_acquired(source, tmp_path):
    src, frames = source
    data = _run(tmp_path, src, {"mode": "frames"})
    assert data["video"].dtype == np.uint16
    np.testing.assert_array_equal(data["video"], frames)
    _same_frames(data["video_frames"], data["frames"])
    assert len(data["video_skipped"]) == 0 and data["attrs"]["video_frames"] == N
    with h5py.File(r.output_file(tmp_path).with_suffix(".video.h5"), "r") as f:
        assert f.attrs["schema"] == "magacq.video"
        assert f["video"].chunks == (5, 64, 96)  # one stack a chunk, written directly


@pytest.mark.parametrize("video", [{"mode": "frames"}, {"mode": "rois"}])
def test_a_finite_camera_s_last_partial_stack_is_kept(tmp_path, video):
    """43 frames in stacks of 5: the last 3 come in a stack the producer completes with filler
    frames; every frame is tracked and recorded, and the filler nowhere."""
    n = N + 3
    frames, _ = sim_frames(n)
    src = write_run_file(tmp_path / "odd.h5", frames, np.arange(n) * 0.005)
    data = _run(tmp_path, src, video)
    np.testing.assert_array_equal(data["frames"]["frame"], np.arange(n))
    tracks = data["tracks"]
    assert len(tracks) == 2 * n and np.isfinite(tracks["time"]).all()
    np.testing.assert_array_equal(np.unique(tracks["frame"]), np.arange(n))
    assert np.isfinite(tracks["x_nm"]).all()
    _same_frames(data["video_frames"], data["frames"])
    assert len(data["video_skipped"]) == 0 and data["attrs"]["video_frames"] == n
    if video["mode"] == "frames":
        np.testing.assert_array_equal(data["video"], frames)
    else:
        assert data["roi_video"].shape == (n, 2, 32, 32)


def test_a_stop_mid_stack_keeps_the_last_frames(source, tmp_path):
    """A camera at 2 frames/s stopped after 3.2 s (6-7 frames, at most one more in the
    producer's 0.4 s): its stack of 5 does not complete, so filler completes it; every stored
    frame is tracked and recorded."""
    src, frames = source
    data = _run(tmp_path, src, {"mode": "frames"}, camera={"loop": True, "frame_rate": 2},
                duration=3.2)  # fmt: skip
    n = len(data["frames"])
    assert n % 5, n  # the premise: stopped mid-stack
    np.testing.assert_array_equal(np.unique(data["tracks"]["frame"]), data["frames"]["frame"])
    assert len(data["tracks"]) == 2 * n
    _same_frames(data["video_frames"], data["frames"])
    np.testing.assert_array_equal(data["video"], frames[data["frames"]["frame"] % N])


def test_every_nth_compressed(source, tmp_path):
    src, frames = source
    data = _run(tmp_path, src, {"mode": "frames", "every": 3, "compression": "lz4"})
    np.testing.assert_array_equal(data["video"], frames[::3])
    np.testing.assert_array_equal(data["video_frames"]["frame"], np.arange(0, N, 3))
    with h5py.File(r.output_file(tmp_path).with_suffix(".video.h5"), "r") as f:
        assert f["video"].chunks == (1, 64, 96)
        assert f["video"].id.get_create_plist().get_filter(0)[0] == 32001  # Blosc


def test_roi_crops_of_every_frame(source, tmp_path):
    src, frames = source
    data = _run(tmp_path, src, {"mode": "rois"})
    crops = data["roi_video"]
    assert crops.shape == (N, 2, 32, 32)
    for b, (x, y) in enumerate(BEADS):
        np.testing.assert_array_equal(crops[:, b], frames[:, y - 16 : y + 16, x - 16 : x + 16])
    assert len(data["tracks"]) == 2 * N


def test_slow_disk_drop_video_keeps_tracking(source, tmp_path):
    """A recorder slower than the camera (0.2 s a stack, 40 ms of frames): with drop_video every
    frame is still stored and tracked, and the video frames it left out are listed."""
    src, _ = source
    data = _run(tmp_path, src, {"mode": "frames", "debug_delay_s": 0.2},
                camera={"loop": True, "frame_rate": 125}, duration=2.0)  # fmt: skip
    assert len(data["dropped"]) == 0
    assert len(data["video_skipped"]) > 0
    both = np.sort(np.concatenate([data["video_frames"]["frame"], data["video_skipped"]["frame"]]))
    np.testing.assert_array_equal(both, data["frames"]["frame"])
    assert len(np.unique(data["tracks"]["frame"])) == len(data["frames"])


def test_slow_disk_drop_frames_keeps_every_stored_frame(source, tmp_path):
    src, _ = source
    data = _run(tmp_path, src, {"mode": "frames", "debug_delay_s": 0.2,
                                "on_backlog": "drop_frames"},
                camera={"loop": True, "frame_rate": 125}, buffers={"n_stacks": 4,
                                                               "images_per_stack": 5},
                duration=2.0)  # fmt: skip
    assert len(data["dropped"]) > 0 and (data["dropped"]["reason"] == 0).all()
    assert len(data["video_skipped"]) == 0
    _same_frames(data["video_frames"], data["frames"])


@pytest.mark.parametrize("on_exit", ["stop", "continue"])
def test_recorder_killed(source, tmp_path, on_exit):
    src, _ = source
    config = _config(tmp_path, src, {"mode": "frames", "on_recorder_exit": on_exit},
                     camera={"loop": True, "frame_rate": 100})  # fmt: skip
    proc = r.start(config, "--duration", "6")
    r.wait_for_frames(proc)  # frames flow (and have been flushed to the video file)
    recorder = r.wait_for_frames(proc, role="magacq recorder")
    recorder.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    path = r.output_file(tmp_path)
    data = r.read(path)  # the run file and the video file, as a SWMR reader sees it
    assert len(data["video"]) > 0
    if on_exit == "stop":
        assert proc.returncode == 1 and "the recorder died" in err
        assert data["attrs"]["state"] == "failed"
        assert "the recorder died" in data["attrs"]["error"]
    else:
        assert proc.returncode == 0, err
        assert data["attrs"]["state"] == "complete" and data["attrs"]["recorder_restarts"] == 1
        assert len(data["video_skipped"]) > 0 and len(data["dropped"]) == 0
        assert len(np.unique(data["tracks"]["frame"])) == len(data["frames"])
    with h5py.File(path.with_suffix(".video.h5"), "r", swmr=True) as f:
        assert len(f["video"]) == len(f["video_seq"]) >= len(data["video_frames"]) - 10
    # recovered like the run file: magacq reads back all it wrote, as a plain reader
    with h5py.File(path, "r") as f:
        assert len(f["video"]) == len(data["video_frames"])
    replay = r.write_config(tmp_path, name="replay", camera={"driver": "replay",
                            "settings": {"file": str(path)}})  # fmt: skip
    done = r.cli("validate", str(replay), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    if on_exit == "stop":
        out = tmp_path / "retracked.h5"
        done = r.cli("retrack", str(path), "--out", str(out), "--workers", "1", cwd=tmp_path,
                     timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        tracked = np.unique(r.read(out)["tracks"]["frame"])
        np.testing.assert_array_equal(tracked, data["video_frames"]["frame"])


@pytest.fixture(params=["tmpfs", "ext4"])
def small_disk(tmp_path, request):
    """A 24 MiB disk: tmpfs (chunks written through HDF5) or ext4 (direct I/O)."""
    with mounted(tmp_path / "disk", request.param, 24) as mnt:
        yield mnt


@pytest.mark.parametrize("reserve_mb", [8, 0])
def test_full_disk_ends_the_run_with_the_reason(tmp_path, small_disk, reserve_mb):
    """256x256 frames at 200/s (25 MiB/s) onto 24 MiB, 8 MiB kept free (or none: the writes
    themselves fail): the run ends itself, says why, and both files are readable."""
    frames, _ = sim_frames(20, {"width": 256, "height": 256})
    src = write_run_file(tmp_path / "big.h5", frames, np.arange(20) * 0.005)
    config = r.write_config(
        tmp_path,
        camera={"driver": "replay", "settings": {"file": str(src), "loop": True,
                                                  "frame_rate": 200}},
        beads={"rois": BEADS},
        output={"dir": str(small_disk), "video": {"mode": "frames", "reserve_mb": reserve_mb}},
        duration=30,
    )  # fmt: skip
    done = r.run(config)
    assert done.returncode == 1, done.stderr
    assert "disk full" in done.stderr and str(small_disk) in done.stderr, done.stderr
    runs = [p for p in small_disk.glob("*.h5") if not p.name.endswith(".video.h5")]
    with h5py.File(runs[0], "r") as f:
        assert f.attrs["state"] == "failed" and "disk full" in f.attrs["error"]
        assert len(f["video"]) == len(f["video_frames"]) > 0
        assert len(f["tracks"]) > 0
