"""Recorded video for tests: frames of the real `sim` camera saved as a magacq run file (through
:class:`magacq.runfile.RunFile`, as a run writes it) or as a TIFF stack."""

from pathlib import Path

import numpy as np
import tifffile

from magacq.runfile import ROIS_DTYPE, RunFile
from simulators.driver import SimCamera

#: A small sim camera: two beads, 32 px ROIs.
SIM = {"width": 96, "height": 64, "n_beads": 2, "roi_size": 32, "seed": 5, "fraction_stuck": 0.0,
       "bead_radius_nm": 500, "bead_xy_px": [[24.0, 32.0], [72.0, 32.0]]}  # fmt: skip


def sim_frames(n: int, settings: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` frames of the sim camera ``(n, h, w)`` and their timestamps."""
    with SimCamera(SIM | (settings or {})) as cam:
        out = np.empty((n, cam.height, cam.width), cam.dtype)
        cam.start(n)
        stamps = np.array([cam.read_frame(out[i]).timestamp for i in range(n)])
    return out, stamps


def write_run_file(path: Path, frames: np.ndarray, timestamps: np.ndarray,
                   frame_numbers: np.ndarray | None = None) -> Path:  # fmt: skip
    """A run file holding ``frames`` as its ``video`` (pixel size 100 nm, no tracks)."""
    n, h, w = frames.shape
    numbers = np.arange(n) if frame_numbers is None else frame_numbers
    attrs = {"pixel_size_nm": 100.0, "bit_depth": 16, "width": w, "height": h}
    rf = RunFile(path, attrs, np.zeros(0, ROIS_DTYPE), with_truth=False,
                 video_shape=(h, w, str(frames.dtype)))  # fmt: skip
    rf.append_frames(frames, numbers, timestamps)
    rf.close({"state": "complete"})
    return path


def write_tiff(path: Path, frames: np.ndarray) -> Path:
    """``frames`` as a multi-page TIFF."""
    tifffile.imwrite(path, frames, photometric="minisblack")
    return path
