"""The recorder: its writes against a plain sequential write of the same bytes to the same disk
(same run), then whole `magacq run`s keeping every frame, and ROI crops, at a camera's rate.

1. Write path, ``--mb`` MiB of 512x512 uint16 frames in stacks of 10: frames copied into a
   real VideoBuffer (``recorder`` group) and the recorder's loop (claim, ``VideoFile.append`` of
   the shared-memory view: one chunk written with direct I/O where the disk has it, release),
   against the same frames copied into a scratch stack and ``os.write``-n to a plain file, and
   the same with direct I/O (``O_DIRECT``: the disk without the page cache); each ends with
   fsync, so all count bytes on disk. The VideoBuffer holds one stack, as the scratch does: the
   same memory on both sides. (From a larger ring, whose stacks no longer stay in the caches as
   they are written, a plain direct write is slower here too: 1.9-2.4 against 2.5-3.1 GB/s
   from 4 stacks.) ``--trials`` rounds of the three in turn (which goes first rotates: the first
   write of a run is often slow here); ratios per round.
2. The disk's sustained rate: a plain sequential write of as many bytes as step 3 records
   (``--fps`` x ``--seconds`` frames), fsync'd, past the page cache's dirty limit.
3. `magacq run` on the replay camera (``--distinct`` sim frames, looped) at ``--fps`` for
   ``--seconds`` (a ring of 256 stacks: 2.5 s), every frame kept (``drop_video``): frames stored,
   dropped by the ring, video frames written, skipped (and the span of frames they fall in), the
   video's MiB/s and its ratio to step 2. When frames were skipped and step 2 is slower than
   ``--fps`` needs, the disk did not allow it: the run is repeated at the highest rate (in
   steps of 50 fps) that 0.9 of step 2 allows.
4. The same in ROI mode with ``--beads`` beads tracked (qi): tracking must stay drop-free.

Run it in the directory whose disk you measure (it writes its files under a temporary directory
there and removes them). Needs free disk for ``--fps * --seconds`` frames (0.5 MiB each).

    .venv/bin/python benchmarks/bench_recorder.py [--fps 1000] [--seconds 60] [--trials 9]
"""

import argparse
import json
import mmap
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
import yaml

from buffers import VideoBuffer, make_locks
from magacq.runfile import ROIS_DTYPE, RunFile, VideoFile
from simulators.driver import SimCamera

SIDE, STACK, ROI = 512, 10, 64
RING = 1  # stacks of the write path's VideoBuffer: as many as the plain writes' scratch
MAGACQ = str(Path(sys.executable).parent / "magacq")


def _plain(path: Path, stacks: np.ndarray, n: int, direct: bool = False) -> float:
    """MiB/s of ``n`` stacks copied (as a producer copies frames into the ring) into a scratch
    stack and written with os.write, then fsync; ``direct``: with direct I/O (O_DIRECT, from
    page-aligned memory)."""
    scratch = np.frombuffer(mmap.mmap(-1, stacks[0].nbytes), stacks.dtype).reshape(stacks[0].shape)
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if direct else 0))
    try:
        for i in range(n):
            for k, frame in enumerate(stacks[i % len(stacks)]):
                scratch[k] = frame
            os.write(fd, scratch)
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - t0
    path.unlink()
    return n * stacks[0].nbytes / 2**20 / seconds


def _recorder(path: Path, stacks: np.ndarray, n: int) -> float:
    """MiB/s of ``n`` stacks through a VideoBuffer: frames copied in (as the producer does), then
    the recorder's loop (claim, ``VideoFile.append``: one chunk write, release), then fsync."""
    groups = ("recorder",)
    vb = VideoBuffer(create=True, locks=make_locks(groups=groups), n_stacks=RING, width=SIDE,
                     height=SIDE, n_images=STACK, bits=16, namespace=f"benchrec{os.getpid()}",
                     groups=groups)  # fmt: skip
    vf = VideoFile(path, mode="frames", frame_shape=(SIDE, SIDE), dtype="uint16", n_images=STACK)
    try:
        t0 = time.perf_counter()
        for i in range(n):
            for frame in stacks[i % len(stacks)]:
                vb.write_image_and_timestamp(frame.T, float(i))  # the API is (width, height)
            claim = vb.claim_stack(timeout=1.0, group="recorder")
            assert claim is not None
            vf.append(claim.stack.T, claim.frame_numbers, claim.timestamps)
            vf.maybe_flush()
            vb.release_stack(claim)
        vf.close()
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
        spent = time.perf_counter() - t0
    finally:
        vb.close()
    path.unlink()
    return n * stacks[0].nbytes / 2**20 / spent


def _record_source(path: Path, distinct: int, beads: int) -> list[list[int]]:
    """A run file of ``distinct`` sim frames to replay; returns the bead centres."""
    settings = {"width": SIDE, "height": SIDE, "n_beads": beads, "roi_size": 96, "seed": 2,
                "fraction_stuck": 0.0}  # fmt: skip
    with SimCamera(settings) as cam:
        frames = np.empty((distinct, SIDE, SIDE), cam.dtype)
        cam.start(distinct)
        for i in range(distinct):
            cam.read_frame(frames[i])
        centres = np.floor(cam.bead_xy_px + 0.5).astype(int).tolist()
    rf = RunFile(path, {"pixel_size_nm": 100.0}, np.zeros(0, ROIS_DTYPE), with_truth=False,
                 video_shape=(SIDE, SIDE, "uint16"))  # fmt: skip
    rf.append_frames(frames, np.arange(distinct), np.arange(distinct) * 1e-3)
    rf.close({"state": "complete"})
    return centres


def _run(tmp: Path, name: str, source: Path, fps: float, seconds: float, video: dict,
         beads: list[list[int]], workers: int) -> dict:  # fmt: skip
    config = {
        "camera": {"driver": "replay", "settings": {"file": str(source), "loop": True,
                                                     "frame_rate": fps}},
        "buffers": {"n_stacks": 256, "images_per_stack": STACK},  # 2.5 s at 1 kHz: a disk pause
        "tracking": {"workers": workers, "roi_size": ROI, "algorithm": "qi"},
        "beads": {"rois": beads},
        "output": {"dir": str(tmp / name), "video": video},
        "duration": seconds,
    }  # fmt: skip
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    t0 = time.perf_counter()
    done = subprocess.run([MAGACQ, "run", str(path)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{name}: magacq run failed:\n{done.stderr[-2000:]}")
    run = next(p for p in (tmp / name).glob("*.h5") if not p.name.endswith(".video.h5"))
    with h5py.File(run, "r") as f:
        a = dict(f.attrs)
        first, last = f["frames"]["timestamp"][[0, -1]]
        skipped = f["video_skipped"]["frame"][:]
    video = run.with_name(run.stem + ".video.h5")
    out = {
        "span": f"{skipped.min()}-{skipped.max()}" if len(skipped) else "none",
        "stored": int(a["frames_stored"]), "dropped": int(a["frames_dropped"]),
        "video": int(a["video_frames"]), "skipped": int(a["video_skipped"]),
        "seconds": float(last - first), "video_mib": video.stat().st_size / 2**20, "wall": wall,
    }  # fmt: skip
    shutil.rmtree(tmp / name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--mb", type=float, default=1024.0, help="MiB per write-path trial")
    ap.add_argument("--trials", type=int, default=9)
    ap.add_argument("--beads", type=int, default=20)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    ap.add_argument("--distinct", type=int, default=50, help="sim frames rendered, then looped")
    args = ap.parse_args()
    mp.set_start_method("fork")
    import buffers._stream_kernel  # noqa: F401  (numba: ~0.5 s once, not in the first trial)

    rng = np.random.default_rng(0)
    stacks = rng.integers(100, 5000, (8, STACK, SIDE, SIDE), dtype=np.uint16)  # 8 distinct
    n = max(1, int(args.mb * 2**20 / stacks[0].nbytes))
    with tempfile.TemporaryDirectory(dir=".", prefix="bench_recorder") as tmp_name:
        tmp = Path(tmp_name)
        free = shutil.disk_usage(tmp).free / 2**30
        print(f"disk: {free:.0f} GiB free in {tmp.resolve().parent}; load average "
              f"{psutil.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
        print(f"1. write path, {n * stacks[0].nbytes / 2**20:.0f} MiB a trial, stacks of "
              f"{STACK} {SIDE}x{SIDE} uint16, fsync'd:")  # fmt: skip
        ways = {
            "plain": lambda: _plain(tmp / "plain.bin", stacks, n),
            "direct": lambda: _plain(tmp / "plain.bin", stacks, n, direct=True),
            "recorder": lambda: _recorder(tmp / "video.h5", stacks, n),
        }
        names = {"plain": "plain write", "direct": "plain direct I/O"}
        ratios: dict[str, list[float]] = {way: [] for way in names}
        for trial in range(args.trials):
            order = list(ways)[trial % 3 :] + list(ways)[: trial % 3]
            got = {way: ways[way]() for way in order}
            line = f"   trial {trial + 1}: recorder {got['recorder']:5.0f} MiB/s"
            for way, name in names.items():
                ratios[way].append(got["recorder"] / got[way])
                line += f", {name} {got[way]:5.0f} (x{ratios[way][-1]:.3f})"
            print(line)
        for way, name in names.items():
            r = ratios[way]
            print(f"   recorder / {name}: median {np.median(r):.3f} [min {min(r):.3f}, max "
                  f"{max(r):.3f}]{' (target >= 0.9)' if way == 'plain' else ''}")  # fmt: skip
        need = args.fps * args.seconds * SIDE * SIDE * 2 / 2**30
        if need > 0.8 * free:
            raise SystemExit(f"3.: {need:.0f} GiB of video do not fit: lower --seconds")
        frame_mib = SIDE * SIDE * 2 / 2**20
        n_disk = max(1, int(args.fps * args.seconds / STACK))
        disk = _plain(tmp / "plain.bin", stacks, n_disk)
        print(
            f"2. disk: plain write of {n_disk * STACK * frame_mib / 2**10:.1f} GiB sustains "
            f"{disk:.0f} MiB/s; {args.fps:g} fps needs {args.fps * frame_mib:.0f} MiB/s"
        )
        source = tmp / "source.h5"
        beads = _record_source(source, args.distinct, args.beads)
        runs = [("frames", {"mode": "frames"}, args.fps), ("rois", {"mode": "rois"}, args.fps)]
        allowed = 50 * int(0.9 * disk / frame_mib / 50)
        step = 2
        while runs:
            name, video, fps = runs.pop(0)
            step += 1
            r = _run(tmp, name, source, fps, args.seconds, video, beads, args.workers)
            if name == "frames" and r["skipped"] and allowed < fps:  # the disk did not allow it
                runs.insert(0, ("frames", video, float(allowed)))
            rate = r["stored"] / r["seconds"]
            mib_s = r["video_mib"] / r["seconds"]
            print(
                f"{step}. magacq run, {name}, {fps:g} fps x {args.seconds:g} s, {len(beads)} "
                f"beads, {args.workers} trackers: stored {r['stored']} ({rate:.0f} fps), "
                f"dropped {r['dropped']}, video {r['video']}, skipped {r['skipped']} (frames "
                f"{r['span']}), {mib_s:.0f} MiB/s of video, x{mib_s / disk:.2f} the disk"
            )
        print(json.dumps({"ratios": ratios}))


if __name__ == "__main__":
    main()
