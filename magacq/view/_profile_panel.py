"""The selected bead's live radial profile, drawn over its Z-LUT when the run has one."""

import numpy as np

from ._qt import QtWidgets, pg
from ._source import Profile, ZLut

#: Height (px) below which a plot's title, axis labels and ticks no longer fit.
MIN_PLOT_HEIGHT = 220


def normalized(profile: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(profile - mean) / rms`` as the Z-LUT rows are, with the mean and rms (rms 0 if flat)."""
    mean = float(np.mean(profile))
    rms = float(np.sqrt(np.mean((profile - mean) ** 2)))
    return (profile - mean) / (rms if rms > 0 else 1.0), mean, rms


def best_match(profile: np.ndarray, zlut: ZLut) -> int:
    """Index of the Z-LUT row nearest ``profile`` (least squares of the normalised profiles).

    The live profile is raw, the LUT's rows normalised (zero mean, unit RMS, as the trackers
    compare them); rows with no data never match.
    """
    n = min(len(profile), zlut.profiles.shape[1])
    p, _, _ = normalized(profile[:n])
    diff = zlut.profiles[:, :n] - p
    err = np.sum(diff * diff, axis=1)
    err[~np.isfinite(err)] = np.inf
    return int(np.argmin(err))


class ProfilePanel(QtWidgets.QWidget):
    """Live profile curve; with a Z-LUT, the LUT as an image and its best-matching row."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.plot = self.graphics.addPlot(row=0, col=0, title="radial profile")
        self.plot.setLabel("bottom", "radius", units="px")
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.match_curve = self.plot.plot(  # in the legend only while there is a Z-LUT
            pen=pg.mkPen((120, 120, 255), width=1, style=pg.QtCore.Qt.PenStyle.DashLine)
        )
        self.live_curve = self.plot.plot(pen=pg.mkPen((255, 220, 0), width=2), name="live")
        # beside the profile, not under it: stacked, both were squashed until labels overlapped
        self.lut_plot = self.graphics.addPlot(row=0, col=1, title="Z-LUT")
        self.lut_plot.setLabel("bottom", "radius", units="px")
        self.lut_plot.setLabel("left", "z (nm)")
        self.lut_image = pg.ImageItem()
        self.lut_plot.addItem(self.lut_image)
        self.lut_marker = pg.InfiniteLine(angle=0, pen=pg.mkPen((255, 220, 0)))
        self.lut_plot.addItem(self.lut_marker)
        self.lut_plot.hide()
        self.caption = QtWidgets.QLabel("no profile yet")
        self.graphics.setMinimumHeight(MIN_PLOT_HEIGHT)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.caption)
        self._zlut: ZLut | None = None
        self._drawn_zlut: ZLut | None = None  # the Z-LUT the drawn match was taken from
        self.profile: Profile | None = None

    def set_zlut(self, zlut: ZLut | None) -> None:
        """Show ``zlut`` (profiles against z) under the live profile, or hide it."""
        self._zlut = zlut
        self.legend.removeItem(self.match_curve)
        if zlut is None:
            self.lut_plot.hide()
            self.match_curve.setData([], [])
            return
        self.legend.addItem(self.match_curve, "Z-LUT match")
        z = zlut.z_nm
        dz = (z[-1] - z[0]) / max(len(z) - 1, 1)
        shown = np.nan_to_num(zlut.profiles, nan=float(np.nanmin(zlut.profiles)))
        self.lut_image.setImage(shown, autoLevels=True)
        self.lut_image.setRect(0, z[0] - dz / 2, zlut.profiles.shape[1], dz * len(z))
        self.lut_plot.show()

    def show_profile(
        self, profile: Profile | None, wanted: int | None, start: float | None = None
    ) -> None:
        """Draw ``profile`` if it belongs to the ``wanted`` bead, else say it is not there;
        its time is given since ``start`` (the run's first frame, camera time) when known."""
        if profile is None or wanted is None or profile.bead_id != wanted:
            self.profile = None
            self.live_curve.setData([], [])
            self.match_curve.setData([], [])
            self.caption.setText(
                "select a bead" if wanted is None else f"waiting for bead {wanted}'s profile"
            )
            return
        if (
            self.profile is not None
            and (profile.bead_id, profile.time) == (self.profile.bead_id, self.profile.time)
            and self._drawn_zlut is self._zlut
        ):
            return  # the same profile as drawn: no repaint
        self.profile = profile
        self._drawn_zlut = self._zlut
        r = np.arange(len(profile.values))
        self.live_curve.setData(r, profile.values)
        text = f"bead {profile.bead_id} at " + (
            f"{profile.time:.3f} s (camera clock)"
            if start is None
            else f"{profile.time - start:.3f} s since the run's start"
        )
        if self._zlut is not None:
            row = best_match(profile.values, self._zlut)
            lut = self._zlut.profiles[row, : len(profile.values)]
            _, mean, rms = normalized(profile.values[: len(lut)])
            self.match_curve.setData(np.arange(len(lut)), lut * rms + mean)  # in the live units
            self.lut_marker.setValue(self._zlut.z_nm[row])
            text += f", nearest Z-LUT row z = {self._zlut.z_nm[row]:.0f} nm"
        self.caption.setText(text)
