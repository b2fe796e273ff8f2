"""The sim driver: camera frames, ground truth, focus stage, pacing, error injection."""

import contextlib

import numpy as np
import pytest

from hal import AcquisitionEnded, DeviceError, HalTimeoutError, UnsupportedSettingError
from simulators.driver import SimCamera, SimFocusStage
from simulators.optics import BeadImager

SMALL = {"width": 192, "height": 128, "n_beads": 4, "roi_size": 48, "seed": 3}


def _frames(cam, n):
    out = np.empty((n, cam.height, cam.width), cam.dtype)
    cam.start(n)
    infos = [cam.read_frame(out[i]) for i in range(n)]
    return out, infos


def test_frames_show_beads_at_ground_truth():
    """Each bead's image in the frame is the optics model's image at the true position."""
    with SimCamera(SMALL | {"fraction_stuck": 0.0, "read_noise_e": 0.0}) as cam:
        frames, infos = _frames(cam, 3)
        truth = cam.ground_truth(2)
        assert truth.frame_number == 2 and truth.timestamp == infos[2].timestamp
        assert truth.x_nm.shape == (4,)
        s = cam.settings
        rel = (frames[2].astype(float) - s.offset_adu) / s.photons
        imager = BeadImager(cam.microscope.optics, 32)
        # truth is in the camera frame (origin at the image corner): pixel centres at i + 0.5
        px, py = truth.x_nm / s.pixel_size_nm - 0.5, truth.y_nm / s.pixel_size_nm - 0.5
        for x, y, z in zip(px, py, truth.z_nm - truth.focal_z_nm, strict=True):
            c0, r0 = round(x) - 16, round(y) - 16
            seen = rel[r0 : r0 + 32, c0 : c0 + 32]
            rms = np.sqrt(np.mean((seen - imager.render(x - c0, y - r0, z)) ** 2))
            off = np.sqrt(np.mean((seen - imager.render(x - c0 + 0.5, y - r0, z)) ** 2))
            assert rms < 0.03 and off > 2 * rms  # shot noise ~ 1/sqrt(4000) = 0.016
        assert frames.max() < 2**16 - 1  # defaults do not saturate


def test_ground_truth_records_and_layout():
    with SimCamera(SMALL) as cam:
        _, infos = _frames(cam, 5)
        records = cam.ground_truth_records()
        assert [r.frame_number for r in records] == [i.frame_number for i in infos]
        xy = cam.bead_xy_px
        assert xy.shape == (4, 2)
        last = records[-1]
        np.testing.assert_allclose(last.x_nm / cam.pixel_size_nm - 0.5, xy[:, 0], atol=10)
        stuck = cam.stuck_beads
        assert stuck.sum() == round(0.1 * 4)
        rois = cam.bead_rois()
        assert (
            (rois >= 0).all() and (rois[:, 0] + 48 <= 192).all() and (rois[:, 1] + 48 <= 128).all()
        )
        with pytest.raises(KeyError):
            cam.ground_truth(99)


def test_seed_reproducible():
    a = SimCamera(SMALL)
    b = SimCamera(SMALL)
    with a, b:
        fa, _ = _frames(a, 2)
        fb, _ = _frames(b, 2)
    np.testing.assert_array_equal(fa, fb)


def test_focus_stage_moves_focal_plane_and_images():
    with SimCamera(SMALL | {"brownian": False, "read_noise_e": 0.0}) as cam:
        out = np.empty((cam.height, cam.width), cam.dtype)
        with SimFocusStage({"settle_time_s": 0.02}, camera=cam) as stage:
            assert stage.position_nm == cam.settings.focus_nm
            cam.start()
            cam.read_frame(out)
            before = out.astype(float)
            stage.move_to(2000.0)
            assert stage.is_busy()
            stage.wait(timeout=5.0)
            assert not stage.is_busy() and stage.position_nm == 2000.0
            cam.read_frame(out)
            info = cam.read_frame(out)
            assert cam.ground_truth(info.frame_number).focal_z_nm == 2000.0
            assert np.abs(out.astype(float) - before).mean() > 100
            with pytest.raises(UnsupportedSettingError):
                stage.move_to(1e6)
            cam.stop()


def test_focus_stage_sequence_steps_once_per_frame_lost_ones_included():
    """Frame k is taken at the sequence's position k (cycling), also after lost frames."""
    z_nm = [-1500.0, 0.0, 2500.0]
    with SimCamera(SMALL | {"error_rate": 0.3}) as cam:
        out = np.empty((cam.height, cam.width), cam.dtype)
        with SimFocusStage({"sequence_max_length": 3}, camera=cam) as stage:
            assert stage.supports_sequence
            with pytest.raises(UnsupportedSettingError, match="1 to 3 positions"):
                stage.load_sequence([0.0] * 4)
            stage.load_sequence(z_nm)
            stage.start_sequence()
            stage.wait(timeout=5.0)
            assert stage.position_nm == z_nm[0]
            cam.start(20)
            seen = []
            for _ in range(20):
                try:
                    seen.append(cam.read_frame(out).frame_number)
                except DeviceError:  # an injected loss: the stage stepped all the same
                    pass
            stage.stop_sequence()
            cam.stop()
            assert 0 < len(seen) < 20
            for k in seen:
                assert cam.ground_truth(k).focal_z_nm == z_nm[k % 3], k
            assert stage.position_nm == z_nm[20 % 3]  # stopped after 20 steps
            cam.start(3)
            for _ in range(3):
                with contextlib.suppress(DeviceError):
                    cam.read_frame(out)
            cam.stop()
            assert stage.position_nm == z_nm[20 % 3]  # no longer stepped
    with SimFocusStage({"start_nm": 0.0, "sequence_max_length": 3}) as alone:
        assert not alone.supports_sequence  # no camera to trigger it


def test_focus_stage_timeout_and_standalone():
    stage = SimFocusStage({"settle_time_s": 0.5, "start_nm": 10.0})
    with stage:
        assert stage.position_nm == 10.0 and stage.limits_nm == (-10_000.0, 10_000.0)
        stage.move_to(100.0)
        with pytest.raises(HalTimeoutError):
            stage.wait(timeout=0.01)
        ticks: list[float] = []  # e.g. a heartbeat, kept beating while the stage settles
        stage.wait(timeout=5.0, tick=lambda: ticks.append(stage.position_nm))
        assert stage.position_nm == 100.0 and ticks


def test_paced_timestamps_are_frame_intervals():
    with SimCamera(SMALL | {"frame_rate": 200.0}) as cam:
        _, infos = _frames(cam, 4)
    # as exact as float64 allows at the host's monotonic clock (its spacing grows with uptime)
    np.testing.assert_allclose(np.diff([i.timestamp for i in infos]), 1 / 200.0, rtol=0, atol=1e-7)


def test_error_injection_loses_frames():
    with SimCamera(SMALL | {"error_rate": 0.3, "n_beads": 1}) as cam:
        out = np.empty((cam.height, cam.width), cam.dtype)
        cam.start(60)
        numbers, errors = [], 0
        while True:
            try:
                numbers.append(cam.read_frame(out).frame_number)
            except DeviceError:
                errors += 1
            except AcquisitionEnded:
                break
        assert 5 < errors < 40 and len(numbers) + errors == 60
        assert numbers == sorted(numbers) and numbers[-1] - numbers[0] + 1 > len(numbers)


def test_settings_errors_list_allowed():
    with pytest.raises(UnsupportedSettingError, match="Allowed settings: .*photons"):
        SimCamera({"photon": 10})
    with pytest.raises(UnsupportedSettingError, match="bit_depth"):
        SimCamera({"bit_depth": 20})
    with pytest.raises(UnsupportedSettingError, match="cells"):
        SimCamera({"width": 64, "height": 64, "n_beads": 5}).open()


def test_exposure_and_frame_rate_setters():
    cam = SimCamera(SMALL)
    cam.exposure_ms = 5.0
    assert cam.exposure_ms == 5.0 and cam.frame_interval_s == 0.005
    with pytest.raises(UnsupportedSettingError):
        cam.frame_rate = -1.0
