"""The replay driver: recorded run files and TIFF stacks played back, paced or flat out; bad
files refused with one clear error (and exit code 2 from `magacq run`)."""

import h5py
import numpy as np
import pytest

from hal import AcquisitionEnded, DeviceError, HalTimeoutError, UnsupportedSettingError
from hal.conformance import ConformanceSpec, DriverConformance
from simulators.replay import ReplayCamera
from tests.pipeline import _runner as r
from tests.recorded import sim_frames, write_run_file, write_tiff


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Eight sim frames, recorded as frames 10, 12, ... at 50 frames/s, in a run file."""
    frames, _ = sim_frames(8)
    path = tmp_path_factory.mktemp("replay") / "run.h5"
    write_run_file(path, frames, 5.0 + np.arange(8) * 0.02, frame_numbers=10 + 2 * np.arange(8))
    return path, frames


@pytest.fixture(scope="module")
def tiff(tmp_path_factory):
    frames, _ = sim_frames(5)
    return write_tiff(tmp_path_factory.mktemp("replay") / "stack.tif", frames), frames


class TestTiffConformance(DriverConformance):
    """The whole conformance suite on a TIFF stack (the registry's run uses a run file)."""

    @pytest.fixture
    def conformance_spec(self, tiff):
        path, _ = tiff
        return ConformanceSpec(ReplayCamera, {"file": path}, {"file": path, "frame_rate": 1.0})


def _play(cam: ReplayCamera, n: int) -> tuple[np.ndarray, list]:
    out = np.empty((n, cam.height, cam.width), cam.dtype)
    cam.start()
    infos = [cam.read_frame(out[i], timeout=5.0) for i in range(n)]
    return out, infos


def test_run_file_played_at_its_timestamps(recorded):
    path, frames = recorded
    with ReplayCamera({"file": path}) as cam:
        assert (cam.width, cam.height, cam.dtype, cam.pixel_size_nm) == (96, 64, frames.dtype, 100)
        assert cam.frame_rate == pytest.approx(50.0)
        out, infos = _play(cam, 8)
        with pytest.raises(AcquisitionEnded):
            cam.read_frame(out[0], timeout=1.0)
        assert [cam.recorded_frame(i.frame_number) for i in infos] == list(range(10, 26, 2))
    np.testing.assert_array_equal(out, frames)
    assert [i.frame_number for i in infos] == list(range(8))
    # as exact as float64 allows at the host's monotonic clock (its spacing grows with uptime)
    np.testing.assert_allclose(np.diff([i.timestamp for i in infos]), 0.02, rtol=0, atol=1e-7)


def test_flat_out_and_loop(recorded):
    path, frames = recorded
    with ReplayCamera({"file": path, "frame_rate": 0, "loop": True}) as cam:
        assert cam.frame_rate == 0
        out, infos = _play(cam, 20)
    np.testing.assert_array_equal(out, frames[np.arange(20) % 8])
    stamps = [i.timestamp for i in infos]
    assert stamps == sorted(stamps)


def test_tiff_pixels(tiff):
    path, frames = tiff
    with ReplayCamera({"file": path}) as cam:
        assert cam.frame_rate == 0  # no timestamps in a TIFF: as fast as possible
        out, _ = _play(cam, 5)
    np.testing.assert_array_equal(out, frames)


def test_fixed_rate_times_out_between_frames(recorded):
    path, _ = recorded
    with ReplayCamera({"file": path, "frame_rate": 1.0}) as cam:
        out = np.empty((cam.height, cam.width), cam.dtype)
        cam.start()
        cam.read_frame(out, timeout=5.0)
        with pytest.raises(HalTimeoutError):
            cam.read_frame(out, timeout=0.05)


def test_truncated_file_refused(recorded, tmp_path):
    path, _ = recorded
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UnsupportedSettingError, match="cannot read .*cut.h5"):
        ReplayCamera({"file": cut}).open()


def test_garbage_and_videoless_files_refused(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file" * 100)
    with pytest.raises(UnsupportedSettingError, match="cannot read"):
        ReplayCamera({"file": junk}).open()
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f["tracks"] = np.zeros(3)
    with pytest.raises(UnsupportedSettingError, match="no `video`"):
        ReplayCamera({"file": empty}).open()
    bad_tiff = write_tiff(tmp_path / "bad.tif", np.zeros((3, 16, 16), np.uint8))
    bad_tiff.write_bytes(bad_tiff.read_bytes()[:200])
    with pytest.raises(UnsupportedSettingError):
        ReplayCamera({"file": bad_tiff}).open()


def test_corrupt_frame_mid_file_is_a_device_error(tmp_path):
    """A compressed frame whose bytes were damaged: open succeeds (first and last frames are
    fine), reading that frame fails with a DeviceError naming it."""
    frames, _ = sim_frames(5)
    path = tmp_path / "gz.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("video", data=frames, chunks=(1, 64, 96), compression="gzip")
        info = f["video"].id.get_chunk_info(2)
    data = bytearray(path.read_bytes())
    data[info.byte_offset : info.byte_offset + info.size] = b"\xff" * info.size
    path.write_bytes(bytes(data))
    with ReplayCamera({"file": path, "frame_rate": 0}) as cam:
        out = np.empty((cam.height, cam.width), cam.dtype)
        cam.start()
        cam.read_frame(out)
        cam.read_frame(out)
        with pytest.raises(DeviceError, match="frame 2 of .*gz.h5 unreadable"):
            cam.read_frame(out)


def _replay_config(tmp_path, path, **settings):
    return r.write_config(
        tmp_path,
        camera={"driver": "replay", "settings": {"file": str(path), **settings}},
        beads={"rois": [[24, 32], [72, 32]]},
        buffers={"n_stacks": 4, "images_per_stack": 4},  # the 8 frames: two whole stacks
        duration=None,
    )


def test_run_on_a_truncated_file_exits_2(recorded, tmp_path):
    path, _ = recorded
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[:3000])
    done = r.run(_replay_config(tmp_path, cut))
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "cut.h5" in lines[0], done.stderr
    missing = r.run(_replay_config(tmp_path, tmp_path / "nope.h5"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_pipeline_tracks_a_replayed_run_file(recorded, tmp_path):
    """`magacq run` on the replay camera: every recorded frame stored and tracked."""
    path, _ = recorded
    done = r.run(_replay_config(tmp_path, path))
    assert done.returncode == 0, done.stderr
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "complete"
    assert len(data["frames"]) == 8 and len(data["dropped"]) == 0
    tracks = data["tracks"]
    assert len(tracks) == 16 and np.isfinite(tracks["x_nm"]).all()
    for bead, (x, y) in enumerate([(24, 32), (72, 32)]):  # the sim's beads, 100 nm pixels
        t = tracks[tracks["bead_id"] == bead]
        assert np.abs(t["x_nm"] - 100 * x).max() < 300 and np.abs(t["y_nm"] - 100 * y).max() < 300
