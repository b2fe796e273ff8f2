"""A stand-in run for the viewer tests: real buffers in a real process, filled with synthetic data.

Used until the pipeline's supervisor lands. It creates the run's buffers in namespace ARGV[1],
draws beads into 128x128 frames, tracks every ROI in BeadRoiBuffer by centroid (so a ROI the
viewer adds gets tracked too) and writes the positions rows, until stdin closes or SIGTERM.

Usage: python fake_run.py NAMESPACE
"""

import signal
import sys
import threading
import time

import numpy as np

from buffers import BufferOverflow, VideoBuffer, make_locks
from magacq.view._source import BeadRoiBuffer, LiveProfileBuffer, MatrixBuffer

SIZE = 128
BEADS = {0: (30.0, 40.0), 1: (90.0, 80.0), 2: (60.0, 100.0)}  # bead id -> centre (x, y) px
EXTRA = (100.0, 25.0)  # a bead with no ROI: the test adds one by clicking
HALF = 8
NM_PER_PX = 100.0


def frame(t: float) -> np.ndarray:
    """A 16-bit frame with a bright spot per bead (bead 0 wobbles so traces move)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    img = 100.0 + 5 * np.random.default_rng().standard_normal((SIZE, SIZE))
    for bead, (x, y) in [*BEADS.items(), (-1, EXTRA)]:
        if bead == 0:
            x, y = x + 2 * np.sin(2 * t), y + 1.5 * np.cos(3 * t)
        img += 2000 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8)
    return img.astype(np.uint16)


def centroid(img: np.ndarray, roi: np.ndarray) -> tuple[float, float]:
    x0, x1, y0, y1 = (int(v) for v in roi)
    sub = img[y0:y1, x0:x1].astype(float)
    sub -= np.median(sub)
    sub[sub < 0] = 0
    yy, xx = np.mgrid[y0:y1, x0:x1]
    return float((sub * xx).sum() / sub.sum()), float((sub * yy).sum() / sub.sum())


def main(namespace: str) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    locks = make_locks("VideoBuffer", "positions", "BeadRoiBuffer", "LiveProfileBuffer")
    opened = []
    try:
        video = VideoBuffer(
            create=True,
            locks=locks,
            n_stacks=4,
            width=SIZE,
            height=SIZE,
            n_images=5,
            bits=16,
            namespace=namespace,
        )
        opened.append(video)
        positions = MatrixBuffer(
            create=True,
            locks=locks,
            name="positions",
            shape=(20000, 8),
            overwrite=True,
            namespace=namespace,
        )
        opened.append(positions)
        rois = BeadRoiBuffer(create=True, locks=locks, capacity=64, namespace=namespace)
        opened.append(rois)
        rois.add_beads(
            {
                b: (int(x) - HALF, int(x) + HALF, int(y) - HALF, int(y) + HALF)
                for b, (x, y) in BEADS.items()
            }
        )
        profile = None
        if LiveProfileBuffer is not None:
            profile = LiveProfileBuffer(
                create=True, locks=locks, profile_capacity=32, namespace=namespace
            )
            opened.append(profile)
        print("ready", flush=True)
        t0 = time.monotonic()
        n = 0
        while not stop.is_set():
            t = time.monotonic() - t0
            img = frame(t)
            try:
                video.write_image_and_timestamp(img.T, t)
            except BufferOverflow:  # nobody consumes: drop the oldest stack, then write
                video.read_stack_no_return()
                video.write_image_and_timestamp(img.T, t)
            _v, ids, boxes = rois.snapshot()
            rows = []
            for bead, box in zip(ids, boxes, strict=True):
                x, y = centroid(img, box)
                rows.append([t, n, bead, x * NM_PER_PX, y * NM_PER_PX, 0.0, 0, time.monotonic()])
            if rows:
                positions.write(np.array(rows))
            if profile is not None and len(ids):
                r = np.arange(32.0)
                profile.write_profile(t, int(ids[0]), np.exp(-r / 6) * np.cos(r / 2 + t))
            n += 1
            stop.wait(0.02)
    finally:
        for buf in opened:
            buf.close()


if __name__ == "__main__":
    main(sys.argv[1])
