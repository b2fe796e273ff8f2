"""The image panel on its own: a frame larger than the screen shows it is decimated for display,
and stays in image pixel coordinates."""

import numpy as np
from pytestqt.qtbot import QtBot

from magacq.view._image_panel import ImagePanel


def test_a_large_frame_is_drawn_at_about_screen_size_in_pixel_coordinates(qtbot: QtBot):
    panel = ImagePanel()
    qtbot.addWidget(panel)
    panel.resize(400, 400)
    panel.show()
    qtbot.waitExposed(panel)
    frame = np.arange(2048 * 1536, dtype=np.uint16).reshape(1536, 2048)
    panel.show_image(1, frame)  # the first frame places the view
    panel.show_image(2, frame)
    shown = panel.image_item.image
    step = int(np.ceil(frame.shape[1] / shown.shape[1]))
    assert step >= 2 and np.array_equal(shown, frame[::step, ::step])
    assert panel.image is frame  # the panel keeps the whole frame (auto contrast, tests)
    # still in image pixels: the item spans the frame; a pixel maps back to itself
    rect = panel.image_item.mapRectToView(panel.image_item.boundingRect())
    assert (rect.width(), rect.height()) == (2048, 1536)
    point = panel.view.mapSceneToView(panel.graphics.mapToScene(panel.widget_point(1000.0, 700.0)))
    assert abs(point.x() - 1000) <= step and abs(point.y() - 700) <= step

    # zoomed in on a corner: every pixel shown again
    panel.view.setRange(xRange=(0, 100), yRange=(0, 100), padding=0)
    panel.show_image(3, frame)
    assert panel.image_item.image.shape == frame.shape
