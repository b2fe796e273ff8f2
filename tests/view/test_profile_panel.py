"""The profile panel on its own: the Z-LUT and its legend entry come and go with the Z-LUT."""

import numpy as np
from pytestqt.qtbot import QtBot

from magacq.view._profile_panel import ProfilePanel
from magacq.view._source import Profile, ZLut


def legend_names(panel: ProfilePanel) -> list[str]:
    return [label.text for _, label in panel.legend.items]


def test_zlut_match_is_drawn_and_named_only_with_a_zlut(qtbot: QtBot):
    panel = ProfilePanel()
    qtbot.addWidget(panel)
    r = np.arange(20.0)
    planes = np.stack([np.cos(r / (2.0 + k)) for k in range(5)])  # one row per z ...
    planes = (planes - planes.mean(1, keepdims=True)) / planes.std(1, keepdims=True)  # normalised
    zlut = ZLut(z_nm=np.arange(5) * 50.0 - 100.0, profiles=planes)
    profile = Profile(bead_id=3, time=1.0, values=1000 + 200 * planes[2])  # raw units

    panel.set_zlut(None)
    panel.show_profile(profile, 3)
    assert legend_names(panel) == ["live"] and not panel.lut_plot.isVisible()
    assert len(panel.match_curve.getData()[0] or []) == 0

    panel.set_zlut(zlut)
    panel.show_profile(Profile(3, 2.0, profile.values), 3)
    assert legend_names(panel) == ["live", "Z-LUT match"]
    x, y = panel.match_curve.getData()
    np.testing.assert_allclose(y, profile.values)  # row 2, drawn in the live profile's units
    assert panel.lut_marker.value() == 0.0 and "z = 0 nm" in panel.caption.text()

    panel.set_zlut(None)
    assert legend_names(panel) == ["live"]
