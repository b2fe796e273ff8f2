"""BeadRoiBuffer: every documented method, validation, a model check, and snapshots taken in one
process while another updates (fork and spawn): never torn."""

import multiprocessing
import os
import threading

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from buffers import BeadRoiBuffer, MatrixBuffer, SegmentError, make_locks

NAME = "BeadRoiBuffer"
CAP = 8
METHODS = ["fork", "spawn"]


def roi(k: int) -> tuple[int, int, int, int]:
    return (k, k + 10, k + 1, k + 11)


@pytest.fixture
def br():
    with BeadRoiBuffer(create=True, locks=make_locks(NAME), capacity=CAP) as buf:
        yield buf


def test_attributes_and_empty_state(br):
    assert br.name == NAME == BeadRoiBuffer.name and br.capacity == CAP
    assert br._info_fields == 4 and br._info_size == 32
    assert br._roi_dtype == np.uint32 and br._occupancy_dtype == np.uint8
    assert br._roi_shape == (CAP, 4) and br._roi_matrix.shape == (CAP, 4)
    assert br._roi_nbytes == CAP * 16 and br._occupancy_nbytes == CAP
    for attr in ("_shm_info", "_shm_data", "_shm_occupancy", "_occupancy"):
        assert getattr(br, attr) is not None
    assert (br.max_id_plus_one, br.active_count, br.version) == (0, 0, 0)
    ids, rois = br.get_beads()
    assert ids.shape == (0,) and ids.dtype == np.uint32
    assert rois.shape == (0, 4) and rois.dtype == np.uint32
    assert br.get_next_available_bead_id() == 0


def test_create_needs_capacity_and_attach_checks_it(br):
    locks = {NAME: br.lock}
    with pytest.raises(ValueError, match="capacity"):
        BeadRoiBuffer(create=True, locks={"x": br.lock}, name="x")
    with pytest.raises(SegmentError):  # a ValueError, as the reference raises
        BeadRoiBuffer(create=False, locks=locks, capacity=CAP + 1)
    peer = BeadRoiBuffer(create=False, locks=locks, capacity=CAP)
    br.add_beads({2: roi(2)})
    ids, rois = peer.get_beads()
    assert ids.tolist() == [2] and rois.tolist() == [list(roi(2))]
    peer.close()


def test_add_update_remove_and_version(br):
    br.add_beads({3: roi(3), 1: roi(1)})
    assert (br.active_count, br.max_id_plus_one, br.version) == (2, 4, 1)
    assert br.get_next_available_bead_id() == 4
    br.update_beads({3: roi(30)})
    ids, rois = br.get_beads()
    assert ids.tolist() == [1, 3] and rois.tolist() == [list(roi(1)), list(roi(30))]
    assert br.version == 2
    br.remove_beads([3, 5])  # 5 is not stored: ignored
    assert (br.active_count, br.max_id_plus_one, br.version) == (1, 4, 3)
    br.remove_beads([5])  # nothing to do: no new version
    br.add_beads({})
    br.update_beads({})
    br.remove_beads([])
    assert br.version == 3
    assert br.get_next_available_bead_id() == 4  # a removed id is not handed out again


def test_replace_clear_reorder(br):
    br.add_beads({0: roi(0)})
    br.replace_beads({5: roi(5), 2: roi(2)})
    ids, _ = br.get_beads()
    assert ids.tolist() == [2, 5] and br.max_id_plus_one == 6 and br.active_count == 2
    assert br.reorder_beads() == {2: 0, 5: 1}
    ids, rois = br.get_beads()
    assert ids.tolist() == [0, 1] and rois.tolist() == [list(roi(2)), list(roi(5))]
    assert br.max_id_plus_one == 2
    br.clear_beads()
    assert (br.active_count, br.max_id_plus_one) == (0, 0)
    assert br.reorder_beads() == {}
    br.replace_beads({})
    assert br.version == 6  # add, replace, reorder, clear, reorder, replace


def test_snapshot_returns_version_with_the_beads(br):
    br.add_beads({4: roi(4)})
    version, ids, rois = br.snapshot()
    assert version == br.version == 1 and ids.tolist() == [4]
    rois[:] = 0  # a copy
    assert br.get_beads()[1].tolist() == [list(roi(4))]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda b: b.add_beads({CAP: roi(0)}), "out of range"),
        (lambda b: b.add_beads({-1: roi(0)}), "out of range"),
        (lambda b: b.add_beads({1.5: roi(0)}), "integer"),
        (lambda b: b.add_beads({1: (0, 1, 2)}), "four"),
        (lambda b: b.add_beads({1: (0, 1, 2, 3, 4)}), "four"),
        (lambda b: b.add_beads({1: (-1, 1, 0, 1)}), "x0 < x1"),
        (lambda b: b.add_beads({1: (5, 5, 0, 1)}), "x0 < x1"),
        (lambda b: b.add_beads({1: (0, 1, 3, 2)}), "y0 < y1"),
        (lambda b: b.add_beads({1: (0, 2**32, 0, 1)}), "x0 < x1"),
        (lambda b: b.add_beads({1: (0, 1.5, 0, 2)}), "integer"),
        (lambda b: b.add_beads({1: 7}), "x0, x1"),
        (lambda b: b.add_beads([(1, roi(1))]), "mapping"),
        (lambda b: b.add_beads({0: roi(9), 2: roi(2)}), "already exist"),
        (lambda b: b.update_beads({0: roi(9), 5: roi(5)}), "do not exist"),
        (lambda b: b.remove_beads([0, 0]), "repeated"),
        (lambda b: b.remove_beads([0, CAP]), "out of range"),
        (lambda b: b.remove_beads(3), "iterable"),
        (lambda b: b.replace_beads({0: roi(1), 1: (1, 0, 0, 1)}), "x0 < x1"),
    ],
)
def test_bad_input_raises_and_changes_nothing(br, call, match):
    br.add_beads({0: roi(0)})
    before = br.snapshot()
    with pytest.raises(ValueError, match=match):
        call(br)
    after = br.snapshot()
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_array_equal(before[2], after[2])


def test_integral_numbers_are_accepted(br):
    br.add_beads({np.int64(2): np.array([1, 2, 3, 4]), 3: (1.0, 2.0, 3.0, 4.0)})
    assert br.get_beads()[0].tolist() == [2, 3]
    br.remove_beads(np.array([2]))
    assert br.active_count == 1


def test_attach_to_other_kind_is_a_clear_error():
    locks = make_locks("m")
    with MatrixBuffer(create=True, locks=locks, name="m", shape=(2, 2)):
        with pytest.raises(SegmentError, match="MatrixBuffer, not a BeadRoiBuffer"):
            BeadRoiBuffer(create=False, locks=locks, name="m")


def test_close_unlinks_and_closed_buffer_refuses(br):
    br.close()
    assert br.closed
    br.close()
    with pytest.raises(ValueError, match="closed"):
        br.get_beads()
    with pytest.raises(FileNotFoundError):
        BeadRoiBuffer(create=False, locks={NAME: br.lock})


# --- a model check -----------------------------------------------------------------------
ids_st = st.integers(0, CAP - 1)
roi_st = st.builds(roi, st.integers(0, 1000))


class BeadModel(RuleBasedStateMachine):
    """Random changes against a dict ``{id: roi}`` and the reference's counters."""

    @initialize()
    def setup(self):
        self.br = BeadRoiBuffer(create=True, locks=make_locks(NAME), capacity=CAP)
        self.beads: dict[int, tuple] = {}
        self.top = 0
        self.version = 0

    def changed(self):
        self.version += 1

    @rule(value=st.dictionaries(ids_st, roi_st, max_size=4))
    def add(self, value):
        if set(value) & set(self.beads):
            with pytest.raises(ValueError):
                self.br.add_beads(value)
            return
        self.br.add_beads(value)
        if value:
            self.beads.update(value)
            self.top = max(self.top, max(value) + 1)
            self.changed()

    @rule(value=st.dictionaries(ids_st, roi_st, max_size=4))
    def update(self, value):
        if not set(value) <= set(self.beads):
            with pytest.raises(ValueError):
                self.br.update_beads(value)
            return
        self.br.update_beads(value)
        if value:
            self.beads.update(value)
            self.changed()

    @rule(ids=st.lists(ids_st, max_size=4, unique=True))
    def remove(self, ids):
        self.br.remove_beads(ids)
        if set(ids) & set(self.beads):
            for i in ids:
                self.beads.pop(i, None)
            self.changed()

    @rule(value=st.dictionaries(ids_st, roi_st, max_size=4))
    def replace(self, value):
        self.br.replace_beads(value)
        self.beads = dict(value)
        self.top = max(value) + 1 if value else 0
        self.changed()

    @rule()
    def clear(self):
        self.br.clear_beads()
        self.beads, self.top = {}, 0
        self.changed()

    @rule()
    def reorder(self):
        mapping = self.br.reorder_beads()
        assert mapping == {old: new for new, old in enumerate(sorted(self.beads))}
        self.beads = {mapping[i]: r for i, r in self.beads.items()}
        self.top = len(self.beads)
        self.changed()

    @invariant()
    def matches(self):
        if not hasattr(self, "br"):
            return
        version, ids, rois = self.br.snapshot()
        assert version == self.version == self.br.version
        assert ids.tolist() == sorted(self.beads)
        assert rois.tolist() == [list(self.beads[i]) for i in sorted(self.beads)]
        assert self.br.active_count == len(self.beads)
        assert self.br.max_id_plus_one == self.top == self.br.get_next_available_bead_id()

    def teardown(self):
        if hasattr(self, "br"):
            self.br.close()


BeadModel.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestBeadModel = BeadModel.TestCase


# --- real processes ----------------------------------------------------------------------
N_UPDATES = 300


def gen_roi(k: int, count: int) -> tuple[int, int, int, int]:
    """The ROI every bead gets in generation ``k`` of ``count`` beads."""
    return (k, k + 10, count, count + 11)


def updater(locks, n_updates: int) -> None:
    """Change the beads ``n_updates`` times; every state is ``gen_roi(k, count)`` for all beads
    ``0..count-1``, plus bead 7 with the same ROI for one state of every third generation."""
    with BeadRoiBuffer(create=False, locks=locks) as br:
        for k in range(1, n_updates + 1):
            count = k % 7 + 1
            if k % 3:
                br.replace_beads({i: gen_roi(k, count) for i in range(count)})
                continue
            ids = br.get_beads()[0].tolist()
            br.update_beads({i: gen_roi(k, len(ids)) for i in ids})
            br.add_beads({7: gen_roi(k, len(ids))})
            br.remove_beads([7])
            br.replace_beads({i: gen_roi(k, count) for i in range(count)})


@pytest.mark.parametrize("reader_lock", ["shared", "private"])
@pytest.mark.parametrize("method", METHODS)
def test_snapshots_never_torn_while_another_process_updates(method, reader_lock):
    """Also for a reader that cannot hold the writers' lock (a viewer attached from outside)."""
    ctx = multiprocessing.get_context(method)
    locks = make_locks(NAME, context=ctx)
    with BeadRoiBuffer(create=True, locks=locks, capacity=CAP) as owner:
        owner.replace_beads({0: gen_roi(0, 1)})
        br = owner
        if reader_lock == "private":
            br = BeadRoiBuffer(create=False, locks={NAME: threading.Lock()})
        proc = ctx.Process(target=updater, args=(locks, N_UPDATES))
        proc.start()
        last_version, snapshots, k = 0, 0, 0
        while True:
            done = proc.exitcode is not None
            version, ids, rois = br.snapshot()
            assert version >= last_version
            last_version = version
            snapshots += 1
            assert (rois == rois[0]).all()  # one state's ROIs, never a mix
            k, count = int(rois[0, 0]), int(rois[0, 2])
            expected = list(range(count)) + ([7] if 7 in ids else [])
            assert ids.tolist() == expected  # and exactly that state's ids
            if done:
                break
        proc.join(timeout=30)
        assert proc.exitcode == 0
        assert k == N_UPDATES and snapshots > 1
        if br is not owner:
            br.close()


# --- reference beads ----------------------------------------------------------------------------
def test_reference_flags_set_clear_and_snapshot(br):
    br.add_beads({k: roi(k) for k in (0, 2, 5)})
    assert br.reference_ids().tolist() == []
    v0 = br.version
    br.set_reference([5, 0])
    assert br.reference_ids().tolist() == [0, 5] and br.reference_ids().dtype == np.uint32
    assert br.version == v0 + 1
    br.set_reference([5])  # unchanged: no new version
    assert br.version == v0 + 1
    version, ids, rois, ref = br.snapshot_with_reference()
    assert version == v0 + 1 and ids.tolist() == [0, 2, 5] and ref.tolist() == [True, False, True]
    np.testing.assert_array_equal(rois, [roi(0), roi(2), roi(5)])
    assert br.snapshot()[0] == version and len(br.get_beads()) == 2  # unchanged API
    br.set_reference([0], flag=False)
    assert br.reference_ids().tolist() == [5] and br.version == v0 + 2


def test_reference_flags_follow_the_beads(br):
    br.add_beads({k: roi(k) for k in (1, 3, 6)})
    br.set_reference([3, 6])
    br.update_beads({3: roi(4)})  # moving a bead keeps its flag
    assert br.reference_ids().tolist() == [3, 6]
    br.remove_beads([6])
    assert br.reference_ids().tolist() == [3]
    br.add_beads({6: roi(6)})  # a new bead under an old id is not a reference
    assert br.reference_ids().tolist() == [3]
    assert br.reorder_beads() == {1: 0, 3: 1, 6: 2}
    assert br.reference_ids().tolist() == [1]
    br.replace_beads({0: roi(0)})
    assert br.reference_ids().tolist() == []
    br.set_reference([0])
    br.clear_beads()
    assert br.reference_ids().tolist() == []


def test_set_reference_validates_and_changes_nothing(br):
    br.add_beads({0: roi(0), 1: roi(1)})
    version = br.version
    for bad in ([0, 2], [0, 0], [CAP], [-1], ["x"]):
        with pytest.raises(ValueError):
            br.set_reference(bad)
    assert br.reference_ids().tolist() == [] and br.version == version
    br.set_reference([])
    assert br.version == version


def mark(namespace) -> None:
    with BeadRoiBuffer(create=False, locks=None, namespace=namespace) as br:
        br.set_reference([1])


@pytest.mark.parametrize("method", METHODS)
def test_reference_flags_are_shared_between_processes(method):
    ctx = multiprocessing.get_context(method)
    ns = f"ref{method}{os.getpid()}"
    with BeadRoiBuffer(create=True, capacity=CAP, namespace=ns) as br:
        br.add_beads({0: roi(0), 1: roi(1)})
        p = ctx.Process(target=mark, args=(ns,))
        p.start()
        p.join(60)
        assert p.exitcode == 0
        assert br.reference_ids().tolist() == [1]
