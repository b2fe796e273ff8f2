"""End-to-end on the real `sim` driver: tracks vs the simulator's ground truth, raw video, and
automatic detection on the shipped configs/sim.yaml."""

import datetime
import json

import h5py
import numpy as np
import yaml

from magacq.tracking import TrackFlag
from tests.pipeline import _runner as r

BEADS_PX = [(80.3, 90.6), (170.2, 100.1), (250.7, 80.4)]
ROI = 64


def _sim_config(tmp_path, **overrides):
    settings = {
        "width": 320,
        "height": 192,
        "frame_rate": 200,
        "n_beads": len(BEADS_PX),
        "bead_xy_px": [list(b) for b in BEADS_PX],
        "roi_size": 96,  # the sim renders rings 96 px wide: the ROI's border is near background
        "seed": 1,
    }
    return r.write_config(
        tmp_path,
        camera={"driver": "sim", "settings": settings},
        tracking={"workers": 1, "roi_size": ROI},
        **overrides,
    )


def _accounted(data: dict) -> np.ndarray:
    """Every camera frame is stored or dropped, once; every stored frame is tracked."""
    stored, dropped = data["frames"]["frame"], data["dropped"]["frame"]
    assert not np.isin(dropped, stored).any()
    every = np.sort(np.concatenate([stored, dropped]))
    assert (every == np.arange(len(every))).all()
    assert data["attrs"]["frames_stored"] == len(stored) > 100
    assert data["attrs"]["frames_dropped"] + data["attrs"]["frames_lost_by_camera"] == len(dropped)
    frames, counts = np.unique(data["tracks"]["frame"], return_counts=True)
    assert data["attrs"]["stacks_lost"] == 0
    assert (frames == stored).all() and (counts == len(BEADS_PX)).all()
    return stored


def test_sim_tracks_match_ground_truth_and_raw_video(tmp_path):
    config = _sim_config(
        tmp_path, output={"dir": str(tmp_path / "runs"), "video": {"mode": "frames", "every": 7}}
    )
    done = r.run(config)
    assert done.returncode == 0, done.stderr
    # no multiprocessing noise at exit (resource-tracker warnings, semaphore-unlink tracebacks)
    for noise in ("Traceback", "resource_tracker", "leaked", "Exception ignored"):
        assert noise not in done.stderr, done.stderr
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "complete"
    stored = _accounted(data)
    assert len(data["rois"]) == len(BEADS_PX)  # automatic detection found each bead
    with h5py.File(r.output_file(tmp_path), "r") as f:  # the file says what its flag bits mean
        flags = json.loads(f["tracks"].attrs["flags"])
    assert flags == {flag.name: int(flag) for flag in TrackFlag} and flags["Z_POOR_MATCH"] == 512

    # tracks against the truth of the same frame: truth is by tracked bead id (the ROI that held
    # the simulated bead at the start), with the simulator's own index beside it
    truth, tracks = data["truth"], data["tracks"]
    assert sorted(truth["bead_id"][truth["frame"] == stored[0]]) == list(range(len(BEADS_PX)))
    # when the run started: wall clock, host clock, and the zero of tracks' time since start
    attrs = data["attrs"]
    started = datetime.datetime.fromisoformat(attrs["acquiring_wallclock"])
    assert abs((datetime.datetime.now().astimezone() - started).total_seconds()) < 300
    assert attrs["first_frame_timestamp"] == data["frames"]["timestamp"][0]
    assert 0 <= tracks["time"].min() - attrs["first_frame_timestamp"] < 1
    t_key = truth["frame"] * 100 + truth["bead_id"]
    order = np.argsort(t_key)
    for bead in range(len(BEADS_PX)):
        t = tracks[tracks["bead_id"] == bead]
        g = truth[order][np.searchsorted(t_key[order], t["frame"] * 100 + bead)]
        assert (g["frame"] == t["frame"]).all()
        err = np.hypot(t["x_nm"] - g["x_nm"], t["y_nm"] - g["y_nm"])
        assert np.isfinite(err).all()
        assert np.median(err) < 10 and err.max() < 40, (bead, np.median(err), err.max())

    # raw video (the recorder's file, linked): every 7th stored frame or listed as skipped
    video, vf, skipped = data["video"], data["video_frames"], data["video_skipped"]
    assert video.shape[1:] == (192, 320) and video.dtype == np.uint16
    assert len(video) == len(vf) == data["attrs"]["video_frames"] > 0
    assert len(skipped) == data["attrs"]["video_skipped"]
    assert sorted([*vf["frame"], *skipped["frame"]]) == list(stored[::7])
    from magacq.tracking import detect_beads

    found = detect_beads(video[-1].astype(float), ROI)
    assert len(found) == len(BEADS_PX)
    for bx, by in BEADS_PX:
        assert min(np.hypot(b.x - bx, b.y - by) for b in found) < 3


def test_detection_finds_every_bead_of_configs_sim(tmp_path):
    """The shipped config's beads all lie a whole ROI inside the frame and apart: all found."""
    from magacq.config import load_config
    from magacq.pipeline.plan import place_rois, probe_camera
    from simulators.driver import SimCamera

    cfg = load_config(r.REPO / "configs" / "sim.yaml")
    geometry, image, _ = probe_camera(cfg)
    rois = place_rois(cfg, geometry, image)
    cam = SimCamera(cfg.camera.settings)
    cam.open()
    try:
        true_xy = cam.bead_xy_px
    finally:
        cam.close()
    assert len(rois) == len(true_xy) == cfg.camera.settings["n_beads"]
    centres = np.array([((x0 + x1) / 2, (y0 + y1) / 2) for _, x0, x1, y0, y1 in rois])
    for x, y in true_xy:
        assert np.hypot(*(centres - (x, y)).T).min() < 3
    assert yaml.safe_load((r.REPO / "configs" / "sim.yaml").read_text())["beads"]["rois"] == []


def test_bead_added_at_run_time_is_tracked(tmp_path):
    """A ROI added to the run's BeadRoiBuffer (as `magacq view` does) is tracked and saved."""
    import os
    import signal

    from magacq.view._source import RunSource

    centres = [[round(x), round(y)] for x, y in BEADS_PX[:2]]
    config = _sim_config(tmp_path, beads={"rois": centres}, duration=None)
    proc = r.start(config)
    r.wait_for_frames(proc)
    source = RunSource(f"{os.environ['MAGACQ_NAMESPACE']}-run{proc.pid}")
    try:
        x, y = BEADS_PX[2]
        before = r.wait_for_status(proc, "stacks_tracked", 1)["stacks_tracked"]
        added = source.add_bead(x, y, ROI // 2)
    finally:
        source.close()
    # stacks claimed from now on have the new bead (a loaded machine: wait for them, not 1 s)
    r.wait_for_status(proc, "stacks_tracked", before + 10)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    data = r.read(r.output_file(tmp_path))
    assert added == 2 and list(data["rois"]["bead_id"]) == [0, 1, 2]
    tracks, truth = data["tracks"], data["truth"]
    new = tracks[tracks["bead_id"] == added]
    assert len(new) > 20
    g = truth[truth["sim_bead"] == 2]  # in no ROI at the start: bead_id -1 in truth
    assert (g["bead_id"] == -1).all()
    g = g[np.searchsorted(g["frame"], new["frame"])]
    assert (g["frame"] == new["frame"]).all()
    err_nm = np.hypot(new["x_nm"] - g["x_nm"], new["y_nm"] - g["y_nm"])
    assert np.median(err_nm) < 10 and err_nm.max() < 40
    # the beads given in the config were tracked in every frame throughout
    assert (np.unique(tracks["frame"][tracks["bead_id"] == 0]) == data["frames"]["frame"]).all()
