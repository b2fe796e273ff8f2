"""`magacq calibrate`: sweep the focus, collect each bead's radial profiles, build its Z-LUT."""

from ._sweep import run_calibration

__all__ = ["run_calibration"]
