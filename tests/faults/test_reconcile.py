"""Matching a run file's ``video_frames`` to its video file after the run (real HDF5 files, as
the writer and the recorder write them): unlisted video frames listed, listed frames the video
lacks moved to ``video_skipped``, frames without a ``frames`` row cut from the video."""

import multiprocessing as mp
import os
import signal

import h5py
import numpy as np

from magacq.runfile import (
    FRAMES_DTYPE,
    ROIS_DTYPE,
    VIDEO_FRAMES_DTYPE,
    Reconciled,
    RunFile,
    VideoFile,
    reconcile_video,
    to_records,
)

N_IMAGES = 5


def _record(tmp_path, pixels, stamps, ready=None) -> VideoFile:
    """The recorder's video file of ``pixels``, a stack at a time; ``ready``: flush, set it
    and wait to be killed."""
    vf = VideoFile(tmp_path / "r.video.h5", mode="frames", frame_shape=(4, 4), dtype="uint16",
                   n_images=N_IMAGES)  # fmt: skip
    for k in range(0, len(pixels), N_IMAGES):
        seq = np.arange(k, min(k + N_IMAGES, len(pixels)))
        vf.append(pixels[seq], seq, stamps[seq])
    if ready is not None:
        vf.maybe_flush(force=True)
        ready.set()
        signal.pause()
    return vf


def _files(tmp_path, n_stored: int, n_video: int, listed: int, skipped=(), killed=False):
    """A run that stored ``n_stored`` frames (camera numbers 10, 12, 14, ...: gaps), whose video
    holds its first ``n_video`` (sequence numbers 0, 1, ...), of which the run file lists the
    first ``listed`` in ``video_frames`` and the sequence numbers ``skipped`` in
    ``video_skipped``; ``killed``: the recorder was SIGKILLed."""
    stamps = 0.005 * np.arange(max(n_stored, n_video))
    number = 10 + 2 * np.arange(len(stamps))
    pixels = np.arange(n_video * 16, dtype=np.uint16).reshape(n_video, 4, 4) + 1
    if killed:  # the recorder SIGKILLed after its last flush: its file still "open for write"
        ctx = mp.get_context("fork")
        ready = ctx.Event()
        recorder = ctx.Process(target=_record, args=(tmp_path, pixels, stamps, ready))
        recorder.start()
        assert ready.wait(30)
        os.kill(recorder.pid, signal.SIGKILL)
        recorder.join()
    else:
        _record(tmp_path, pixels, stamps).close()
    rf = RunFile(tmp_path / "r.h5", {}, np.zeros(0, ROIS_DTYPE), with_truth=False,
                 video_link=("r.video.h5", "video"))  # fmt: skip
    stored = np.zeros((n_stored, len(FRAMES_DTYPE.names)))
    stored[:, 0], stored[:, 1] = number[:n_stored], stamps[:n_stored]
    rf.append("frames", to_records(stored, FRAMES_DTYPE))
    for name, seq in (("video_frames", np.arange(listed)), ("video_skipped", np.array(skipped))):
        rows = np.column_stack([number[seq], stamps[seq]]) if len(seq) else np.zeros((0, 2))
        rf.append(name, to_records(rows, VIDEO_FRAMES_DTYPE))
    rf.close({"state": "failed", "video_frames": listed, "video_skipped": len(skipped)})
    return tmp_path / "r.h5", number, pixels


def _read(path):
    with h5py.File(path, "r") as f:
        return f["video"][:], f["video_frames"][:], f["video_skipped"][:], dict(f.attrs)


def test_a_listing_that_matches_is_left_alone(tmp_path):
    path, number, _ = _files(tmp_path, 20, 20, 20)
    assert reconcile_video(path) == Reconciled(0, 0, 0, 0)
    _, listed, _, attrs = _read(path)
    assert (listed["frame"] == number[:20]).all() and attrs["video_frames"] == 20


def test_unlisted_video_frames_are_listed_and_no_longer_skipped(tmp_path):
    """The writer listed 10 of 20, and its end-of-run pass called 15..19 skipped."""
    path, number, pixels = _files(tmp_path, 22, 20, 10, skipped=[15, 16, 17, 18, 19, 21])
    assert reconcile_video(path) == Reconciled(10, 0, 0, 0)
    video, listed, skipped, attrs = _read(path)
    assert (video == pixels).all()
    assert (listed["frame"] == number[:20]).all()
    assert (listed["timestamp"] == 0.005 * np.arange(20)).all()
    assert list(skipped["frame"]) == [number[21]]
    assert attrs["video_frames"] == 20 and attrs["video_skipped"] == 1


def test_video_frames_without_a_frames_row_are_cut(tmp_path):
    """The writer stopped before the `frames` rows of the last 7 video frames."""
    path, number, pixels = _files(tmp_path, 13, 20, 5)
    assert reconcile_video(path) == Reconciled(8, 0, 7, 0)
    video, listed, _, _ = _read(path)
    assert (video == pixels[:13]).all()
    assert (listed["frame"] == number[:13]).all()
    with h5py.File(tmp_path / "r.video.h5", "r") as f:
        assert len(f["video_seq"]) == 13


def test_video_frames_whose_video_seq_rows_never_reached_the_file_are_cut(tmp_path):
    """The recorder writes ``video_seq`` at its flushes: killed between two, its file can hold
    frames past the last row."""
    path, number, pixels = _files(tmp_path, 20, 15, 10)
    with h5py.File(tmp_path / "r.video.h5", "r+") as f:
        f["video_seq"].resize((10,))
    assert reconcile_video(path) == Reconciled(0, 0, 5, 0)
    video, listed, _, _ = _read(path)
    assert len(video) == len(listed) == 10 and (video == pixels[:10]).all()
    assert (listed["frame"] == number[:10]).all()


def test_listed_frames_the_video_lacks_move_to_skipped(tmp_path):
    path, number, _ = _files(tmp_path, 20, 10, 12)
    assert reconcile_video(path) == Reconciled(0, 2, 0, 0)
    video, listed, skipped, _ = _read(path)
    assert len(video) == len(listed) == 10
    assert list(skipped["frame"]) == list(number[10:12])


def test_a_killed_recorders_video_is_cut_too(tmp_path):
    path, number, pixels = _files(tmp_path, 12, 15, 5, killed=True)
    assert reconcile_video(path) == Reconciled(7, 0, 3, 0)
    video, listed, _, _ = _read(path)
    assert (video == pixels[:12]).all()
    assert (listed["frame"] == number[:12]).all()


def test_a_writer_that_stopped_early_gets_its_unlisted_frames_skipped(tmp_path):
    """28 stored, 20 in the video, all listed, but the writer never listed 20..27 as skipped."""
    path, number, _ = _files(tmp_path, 28, 20, 20, skipped=[21])
    assert reconcile_video(path) == Reconciled(0, 0, 0, 0)  # without `unlisted`: left alone
    assert reconcile_video(path, unlisted=True) == Reconciled(0, 0, 0, 7)
    _, listed, skipped, attrs = _read(path)
    assert sorted(skipped["frame"]) == list(number[20:28])
    assert attrs["video_skipped"] == 8
    assert reconcile_video(path, unlisted=True) == Reconciled(0, 0, 0, 0)  # listed once
