"""Text that overlaps other text in a drawn matplotlib figure (tests of the figures)."""

from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg


def _drawn_texts(fig: Any) -> list[Any]:
    """The figure's texts that are drawn: titles, labels, texts, legends, and the tick labels
    of ticks inside their axis's view (matplotlib keeps the others, undrawn)."""
    texts = [*fig.texts, *(t for lg in fig.legends for t in [*lg.get_texts(), lg.get_title()])]
    for ax in fig.axes:
        if not ax.axison:
            texts += ax.texts
            continue
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        texts += ax.texts
        if ax.get_legend() is not None:
            texts += [*ax.get_legend().get_texts(), ax.get_legend().get_title()]
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            span = hi - lo
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if lo - 1e-9 * span <= tick.get_loc() <= hi + 1e-9 * span:
                    texts += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    unique = {id(t): t for t in texts}  # the suptitle is among fig.texts
    return [t for t in unique.values() if t.get_visible() and t.get_text().strip()]


def overlapping_texts(fig: Any, slack_px: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of drawn, non-empty texts of ``fig`` whose boxes overlap (by more than
    ``slack_px`` each way), and texts that stick out of the figure."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in _drawn_texts(fig)]
    page = fig.bbox
    bad = [(text, "outside the figure") for text, b in boxes
           if b.x0 < page.x0 - slack_px or b.x1 > page.x1 + slack_px
           or b.y0 < page.y0 - slack_px or b.y1 > page.y1 + slack_px]  # fmt: skip
    for i, (ta, a) in enumerate(boxes):
        for tb, b in boxes[i + 1 :]:
            w = min(a.x1, b.x1) - max(a.x0, b.x0)
            h = min(a.y1, b.y1) - max(a.y0, b.y0)
            if w > slack_px and h > slack_px:
                bad.append((ta, tb))
    return bad
