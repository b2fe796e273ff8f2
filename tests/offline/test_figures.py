"""The figures of `magacq analyze` and `magacq calibrate`, drawn and checked: no text over
other text or off the page, a colour and a line style of its own for every hold."""

import re
from dataclasses import replace

import numpy as np
import pytest

from magacq.analysis import zlut_quality_figure
from magacq.offline import analyze_run
from magacq.offline._outputs import (
    TEXT_LINES,
    TEXT_WIDTH,
    bead_page,
    plateau_styles,
    summary_page,
)
from simulators.motion import MotionParams
from tests.offline._overlap import overlapping_texts
from tests.offline._runfiles import Step, write_run

FORCES = [0.1, 0.2, 0.5, 1, 2, 5, 10]


@pytest.fixture(scope="module")
def force_extension(tmp_path_factory):
    """13 holds up and back down, 12 tethered beads, one of them losing frames (problems)."""
    tmp = tmp_path_factory.mktemp("figures")
    steps = [Step("surface", 2000)]
    steps += [Step(f"{f:g} pN", 8000, float(f)) for f in FORCES + FORCES[-2::-1]]
    run = write_run(tmp / "fe.h5", steps, tethered=12, references=1, seed=2, lose={3: 0.2})
    return analyze_run(run, tmp / "out", figures=False)[0]


@pytest.fixture(scope="module")
def rotation(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("figures_rot")
    top = MotionParams(force_pn=1.0).extension_nm
    turns = list(np.arange(-30.0, 31, 10)) + list(np.arange(20.0, -31, -10))
    steps = [Step("surface", 2000)] + [
        Step(f"{n:+.0f} turns", 3000, 1.0, turns=n, extension_nm=top - 64 * max(n - 12, 0))
        for n in turns
    ]
    run = write_run(tmp / "rot.h5", steps, tethered=3, references=1, seed=3)
    return analyze_run(run, tmp / "out", figures=False)[0]


def test_every_hold_has_its_own_colour_and_the_way_back_its_own_line(force_extension) -> None:
    styles = plateau_styles(force_extension.plateaus[1:])
    looks = {(tuple(np.round(s["color"], 3)), s["linestyle"]) for s in styles.values()}
    assert len(looks) == 13
    colours = {s["name"]: tuple(s["color"]) for s in styles.values()}
    assert len(set(colours.values())) == 7  # one per force, the way back in its colour
    assert colours["2 pN"] == colours["2 pN (back)"]
    assert styles[force_extension.plateaus[-1]]["linestyle"] == "--"


@pytest.mark.parametrize("run", ["force_extension", "rotation"])
def test_pages_have_no_overlapping_text(run: str, request) -> None:
    res = request.getfixturevalue(run)
    assert res.beads[0].plateaus
    for fig in (summary_page(res), bead_page(res.beads[0])):
        assert overlapping_texts(fig) == []


def test_summary_axes_are_force_or_height_and_its_text_fits(force_extension) -> None:
    fig = summary_page(force_extension)
    forces, curve = fig.axes[0], fig.axes[1]
    assert forces.get_xlabel() == "force asked (pN)" and forces.get_ylabel() == "force (pN)"
    assert curve.get_xlabel() == "extension (nm)"
    (text,) = [t.get_text() for t in fig.axes[3].texts]
    lines = text.splitlines()
    assert len(lines) <= TEXT_LINES and max(map(len, lines)) <= TEXT_WIDTH
    listed = [m for _, _, m in force_extension.problems if m in text]
    more = re.search(r"\.\.\. (\d+) more in problems.csv", text)
    assert len(listed) + (int(more.group(1)) if more else 0) == 13  # every problem counted


def test_a_long_problem_list_is_cut_and_counted(force_extension) -> None:
    many = replace(force_extension, problems=force_extension.problems * 5)
    page = summary_page(many)
    assert overlapping_texts(page) == []  # the text block stays on the page
    (text,) = [t.get_text() for t in page.axes[3].texts]
    assert len(text.splitlines()) <= TEXT_LINES
    assert re.search(r"\.\.\. \d+ more in problems.csv", text)


def test_zlut_quality_figure_has_no_overlapping_text() -> None:
    rng = np.random.default_rng(0)
    planes = rng.standard_normal((9, 30, 20))
    planes[4] = np.nan
    good = np.ones(9, dtype=bool)
    good[4] = False
    reasons = [""] * 9
    reasons[4] = "left its ROI or lost, planes missing, planes not distinct"
    fig = zlut_quality_figure(np.arange(30) * 100.0, planes, np.arange(9), good, reasons)
    assert overlapping_texts(fig) == []


def test_the_overlap_check_sees_overlaps_and_text_off_the_page() -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.text(0.5, 0.5, "one label")
    ax.text(0.52, 0.5, "another label")
    fig.text(0.9, 0.5, "a text running off the page")
    found = overlapping_texts(fig)
    assert ("one label", "another label") in found
    assert ("a text running off the page", "outside the figure") in found
