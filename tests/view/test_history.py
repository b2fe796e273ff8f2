"""The viewer's track history: rows of whole stacks in any order, trimmed to its time window."""

import numpy as np

from magacq.view._history import TrackHistory


def _rows(frames: np.ndarray, bead: int, fps: float = 100.0) -> np.ndarray:
    """Position rows as the trackers write them: x = frame, y = 2 frame, z = -frame."""
    f = np.asarray(frames, dtype=float)
    rows = np.zeros((len(f), 8))
    rows[:, 0], rows[:, 1], rows[:, 2] = f / fps, f, bead
    rows[:, 3], rows[:, 4], rows[:, 5] = f, 2 * f, -f
    return rows


def test_stacks_in_any_order_come_out_sorted_and_trimmed():
    history = TrackHistory(window_s=10.0)
    stacks = [np.arange(s, s + 10) for s in range(0, 3000, 10)]  # 30 s at 100 frames/s
    rng = np.random.default_rng(0)
    for k in range(0, len(stacks), 6):  # ticks of 6 stacks, two beads, shuffled
        batch = [_rows(s, b) for s in stacks[k : k + 6] for b in (0, 1)]
        rows = np.concatenate([batch[i] for i in rng.permutation(len(batch))])
        history.extend(rows)
    for bead in (0, 1):
        t, x, y, z = history.series(bead).T
        assert np.array_equal(x, np.arange(1999, 3000))  # the last 10 s, in frame order
        assert np.array_equal(t, x / 100) and np.array_equal(y, 2 * x) and np.array_equal(z, -x)
    assert len(history) <= 2 * 1.1 * 1000 + 2 * 60  # older rows were dropped
    assert list(history.bead_ids()) == [0, 1]


def test_minus_a_reference_only_where_both_were_tracked():
    history = TrackHistory(window_s=100.0)
    history.extend(np.concatenate([_rows(np.arange(50), 0), _rows(np.arange(0, 50, 2), 1)]))
    minus = history.series(0, reference=1)
    assert np.array_equal(minus[:, 0], np.arange(0, 50, 2) / 100)
    assert (minus[:, 1:] == 0).all()  # both beads moved the same
    assert len(history.series(0, reference=7)) == 0  # a reference with no rows


def test_versions_change_with_the_rows_and_a_bead_out_of_the_window_is_gone():
    history = TrackHistory(window_s=1.0)
    assert history.version(0) == -1 and len(history.series(0)) == 0
    history.extend(_rows(np.arange(10), 0))
    v = history.version(0)
    history.extend(np.empty((0, 8)))
    assert history.version(0) == v  # nothing new: the trace need not be redrawn
    history.extend(_rows(np.arange(500, 510), 1))  # 5 s later: bead 0 is out of the window
    history.trim()
    assert history.version(0) == -1 and list(history.bead_ids()) == [1]
