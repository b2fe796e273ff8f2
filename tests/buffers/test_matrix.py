"""MatrixBuffer: every documented method, the no-silent-overwrite policy, a model check, and
real processes (several writers, one reader; fork and spawn; a SIGKILLed creator)."""

import multiprocessing
import os
import stat
import threading
import time
from collections import deque

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from buffers import BeadRoiBuffer, BufferOverflow, MatrixBuffer, SegmentError, make_locks
from buffers._segment import segment_name
from tests.segments import SHM, segment_exists

NAME = "Tracks"
METHODS = ["fork", "spawn"]


def rows(start: int, n: int, cols: int = 3) -> np.ndarray:
    """``n`` distinct rows; row ``i`` holds ``start + i`` in column 0."""
    return np.arange(start, start + n, dtype=np.float64)[:, None] * np.ones(cols)


@pytest.fixture
def mb():
    with MatrixBuffer(create=True, locks=make_locks(NAME), name=NAME, shape=(4, 3)) as buf:
        yield buf


def exists(name: str, namespace: str | None = None) -> bool:
    return segment_exists(segment_name(name, namespace))


def test_attributes(mb):
    assert mb.name == NAME and mb.shape == (4, 3)
    assert mb.dtype == np.float64 and mb.itemsize == 8
    assert mb.strides == (24, 8) and mb.nbytes == 96
    assert not mb.overwrite and not mb.closed
    for attr in ("_shm_info", "_shm", "_idx_shm", "_buf", "_idx_buf"):
        assert getattr(mb, attr) is not None
    assert len(mb._buf) == mb.nbytes
    assert np.isnan(mb.peak_unsorted()).all()
    assert (mb.get_count_index(), mb.get_read_index(), mb.get_write_index()) == (0, 0, 0)


def test_create_needs_a_positive_shape():
    locks = make_locks(NAME)
    with pytest.raises(ValueError, match="shape"):
        MatrixBuffer(create=True, locks=locks, name=NAME)
    with pytest.raises(ValueError, match="shape"):
        MatrixBuffer(create=True, locks=locks, name=NAME, shape=(0, 3))
    # no entry for the name, or no dict at all: the buffer locks its own segment
    with MatrixBuffer(create=True, locks=locks, name="Other", shape=(2, 2)) as other:
        assert other.shape == (2, 2)
    with MatrixBuffer(create=True, locks=None, name="Other", shape=(2, 2)) as other:
        assert other.shape == (2, 2)


def test_write_then_read_counts_bytes(mb):
    mb.write(rows(0, 3))
    assert mb.get_count_index() == 3 * 24
    assert mb.get_write_index() == 3 * 24 and mb.get_read_index() == 0
    out = mb.read()
    np.testing.assert_array_equal(out, rows(0, 3))
    assert mb.get_count_index() == 0 and mb.get_read_index() == 3 * 24
    assert mb.rows_written == 3


def test_read_when_empty_returns_no_rows(mb):
    out = mb.read()
    assert out.shape == (0, 3) and out.dtype == np.float64


def test_rows_wrap_and_read_back_in_order(mb):
    mb.write(rows(0, 3))
    mb.read()
    mb.write(rows(3, 3))  # slots 3, 0, 1
    assert mb.get_write_index() == 2 * 24
    np.testing.assert_array_equal(mb.read(), rows(3, 3))


def test_exactly_full_then_overflow_leaves_buffer_untouched(mb):
    mb.write(rows(0, 4))
    assert mb.get_count_index() == mb.nbytes
    assert mb.get_read_index() == mb.get_write_index() == 0
    before = mb.peak_unsorted()
    with pytest.raises(BufferOverflow):
        mb.write(rows(10, 1))
    assert mb.get_count_index() == mb.nbytes
    np.testing.assert_array_equal(mb.peak_unsorted(), before)
    np.testing.assert_array_equal(mb.read(), rows(0, 4))
    mb.write(rows(4, 4))  # full again after a wrap-free refill
    np.testing.assert_array_equal(mb.read(), rows(4, 4))


def test_more_rows_than_capacity_overflow(mb):
    with pytest.raises(BufferOverflow):
        mb.write(rows(0, 5))
    assert mb.get_count_index() == 0 and mb.rows_written == 0


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(3),  # 1-D
        np.zeros((2, 2)),  # wrong column count
        np.zeros((1, 2, 3)),  # 3-D
        np.zeros((2, 3), complex),  # not castable to float64
        np.array([["a", "b", "c"]]),
    ],
)
def test_bad_writes_raise_and_change_nothing(mb, bad):
    mb.write(rows(0, 1))
    before = (mb.get_count_index(), mb.get_write_index(), mb.peak_unsorted())
    with pytest.raises(ValueError):
        mb.write(bad)
    after = (mb.get_count_index(), mb.get_write_index(), mb.peak_unsorted())
    assert before[:2] == after[:2]
    np.testing.assert_array_equal(before[2], after[2])


def test_integer_and_list_rows_are_accepted(mb):
    mb.write(np.array([[1, 2, 3]], np.int32))
    mb.write([[4, 5, 6]])
    mb.write(np.empty((0, 3)))
    np.testing.assert_array_equal(mb.read(), [[1, 2, 3], [4, 5, 6]])


def test_peak_sorted_and_unsorted(mb):
    mb.write(rows(0, 3))
    mb.read()
    mb.write(rows(3, 2))  # slots 3, 0
    unsorted = mb.peak_unsorted()
    np.testing.assert_array_equal(unsorted[[3, 0, 1, 2], 0], [3, 4, 1, 2])
    ordered = mb.peak_sorted()  # oldest slot first: slot 1 (row 1) ... slot 0 (row 4)
    np.testing.assert_array_equal(ordered[:, 0], [1, 2, 3, 4])
    assert mb.get_count_index() == 2 * 24  # peaks consume nothing
    unsorted[:] = -1  # a copy: the buffer is unchanged
    np.testing.assert_array_equal(mb.read()[:, 0], [3, 4])


def test_overwrite_policy_drops_and_counts_oldest():
    locks = make_locks(NAME)
    with MatrixBuffer(create=True, locks=locks, name=NAME, shape=(3, 3), overwrite=True) as mb:
        assert mb.overwrite
        mb.write(rows(0, 2))
        mb.write(rows(2, 2))  # drops row 0
        assert mb.overwritten_rows == 1
        np.testing.assert_array_equal(mb.read()[:, 0], [1, 2, 3])
        mb.write(rows(4, 5))  # more than capacity: keeps the newest 3
        assert mb.overwritten_rows == 3
        assert mb.rows_written == 9
        peer = MatrixBuffer(create=False, locks=locks, name=NAME)
        assert peer.overwrite and peer.overwritten_rows == 3
        np.testing.assert_array_equal(peer.read()[:, 0], [6, 7, 8])
        peer.close()


def test_attach_shares_data_and_checks_geometry(mb):
    locks = {NAME: mb.lock}
    peer = MatrixBuffer(create=False, locks=locks, name=NAME)
    assert peer.shape == mb.shape
    mb.write(rows(0, 2))
    np.testing.assert_array_equal(peer.read(), rows(0, 2))
    assert mb.get_count_index() == 0
    peer.close()
    assert exists(NAME)  # an attached close does not unlink
    with pytest.raises(SegmentError, match="geometry"):
        MatrixBuffer(create=False, locks=locks, name=NAME, shape=(5, 3))


def test_attach_to_other_kind_or_absent_is_a_clear_error():
    locks = make_locks("BeadRoiBuffer", "Nothing")
    with BeadRoiBuffer(create=True, locks=locks, capacity=4):
        with pytest.raises(SegmentError, match="BeadRoiBuffer, not a MatrixBuffer"):
            MatrixBuffer(create=False, locks=locks, name="BeadRoiBuffer")
    with pytest.raises(FileNotFoundError):
        MatrixBuffer(create=False, locks=locks, name="Nothing")


def test_namespaces_keep_same_names_apart():
    locks = make_locks(NAME)
    with (
        MatrixBuffer(create=True, locks=locks, name=NAME, shape=(2, 1), namespace="a") as a,
        MatrixBuffer(create=True, locks=locks, name=NAME, shape=(2, 1), namespace="b") as b,
    ):
        a.write([[1.0]])
        assert b.read().shape == (0, 1)
        assert a.read()[0, 0] == 1.0


def test_owner_only_permissions_and_unlink_on_close():
    with MatrixBuffer(create=True, locks=make_locks(NAME), name=NAME, shape=(2, 2)) as mb:
        if SHM.is_dir():  # Linux: shared memory is files there
            assert stat.S_IMODE((SHM / segment_name(NAME)).stat().st_mode) == 0o600
    assert not exists(NAME) and mb.closed
    mb.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        mb.read()
    with pytest.raises(ValueError, match="closed"):
        mb.write(rows(0, 1, 2))


def test_second_creator_is_refused_while_owner_lives(mb):
    with pytest.raises(FileExistsError):
        MatrixBuffer(create=True, locks={NAME: mb.lock}, name=NAME, shape=(4, 3))
    mb.write(rows(0, 1))  # the original is intact
    assert mb.get_count_index() == 24


def test_collected_owner_unlinks():
    mb = MatrixBuffer(create=True, locks=make_locks(NAME), name=NAME, shape=(2, 2))
    assert exists(NAME)
    del mb
    assert not exists(NAME)


# --- a model check -----------------------------------------------------------------------
class MatrixModel(RuleBasedStateMachine):
    """Random writes and reads against a deque of unread rows and a list of stored rows."""

    @initialize(cap=st.integers(1, 6), cols=st.integers(1, 3), overwrite=st.booleans())
    def setup(self, cap, cols, overwrite):
        self.cap, self.cols = cap, cols
        self.mb = MatrixBuffer(
            create=True, locks=make_locks(NAME), name=NAME, shape=(cap, cols), overwrite=overwrite
        )
        self.unread: deque = deque()
        self.stored: list[float] = []
        self.next = 0
        self.lost = 0
        self.accepted = 0

    @rule(n=st.integers(0, 8))
    def write(self, n):
        block = rows(self.next, n, self.cols)
        if n > self.cap - len(self.unread) and not self.mb.overwrite:
            with pytest.raises(BufferOverflow):
                self.mb.write(block)
            return
        self.mb.write(block)
        self.next += n
        self.accepted += n
        kept = block[:, 0].tolist()[-self.cap :] if n else []
        self.lost += n - len(kept)
        self.stored += kept
        self.unread.extend(kept)
        while len(self.unread) > self.cap:
            self.unread.popleft()
            self.lost += 1

    @rule()
    def read(self):
        out = self.mb.read()
        assert out.shape == (len(self.unread), self.cols)
        np.testing.assert_array_equal(out[:, 0], list(self.unread))
        assert (out == out[:, :1]).all()
        self.unread.clear()

    @invariant()
    def indices_and_peaks_match(self):
        if not hasattr(self, "mb"):
            return
        rb = self.cols * 8
        assert self.mb.get_count_index() == len(self.unread) * rb
        assert self.mb.get_write_index() == len(self.stored) % self.cap * rb
        assert self.mb.get_read_index() == (len(self.stored) - len(self.unread)) % self.cap * rb
        assert self.mb.overwritten_rows == self.lost
        assert self.mb.rows_written == self.accepted
        expected = ([np.nan] * self.cap + self.stored)[-self.cap :]
        np.testing.assert_array_equal(self.mb.peak_sorted()[:, 0], expected)

    def teardown(self):
        if hasattr(self, "mb"):
            self.mb.close()


MatrixModel.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestMatrixModel = MatrixModel.TestCase


# --- real processes ----------------------------------------------------------------------
N_WRITERS, PER_WRITER, CAP = 3, 200, 16


def writer(locks, writer_id: int, n_rows: int) -> None:
    """Append rows ``(writer_id, seq, check)`` in batches of 1..5, retrying when full."""
    with MatrixBuffer(create=False, locks=locks, name=NAME) as mb:
        seq, batch = 0, 1
        while seq < n_rows:
            n = min(batch, n_rows - seq)
            s = np.arange(seq, seq + n, dtype=np.float64)
            block = np.stack([np.full(n, writer_id), s, writer_id * 1e6 + s], axis=1)
            try:
                mb.write(block)
            except BufferOverflow:
                time.sleep(0.001)  # a test writer may wait crudely; the reader is draining
                continue
            seq += n
            batch = batch % 5 + 1


@pytest.mark.parametrize("method", METHODS)
def test_writers_in_processes_reader_drains_nothing_lost_or_duplicated(method):
    ctx = multiprocessing.get_context(method)
    locks = make_locks(NAME, context=ctx)
    with MatrixBuffer(create=True, locks=locks, name=NAME, shape=(CAP, 3)) as mb:
        procs = [ctx.Process(target=writer, args=(locks, w, PER_WRITER)) for w in range(N_WRITERS)]
        for p in procs:
            p.start()
        got = []
        total = N_WRITERS * PER_WRITER
        while sum(len(g) for g in got) < total:
            block = mb.read()
            if len(block):
                got.append(block)
            elif any(p.exitcode not in (None, 0) for p in procs):
                break
            else:
                time.sleep(0.001)
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert mb.read().shape == (0, 3)
    data = np.concatenate(got)
    assert data.shape == (total, 3)
    np.testing.assert_array_equal(data[:, 2], data[:, 0] * 1e6 + data[:, 1])  # rows not torn
    for w in range(N_WRITERS):
        seqs = data[data[:, 0] == w, 1]
        np.testing.assert_array_equal(seqs, np.arange(PER_WRITER))  # each once, in order


def close_inherited(mb) -> None:
    mb.write(rows(7, 1))
    mb.close()  # a forked copy of the creator's object must not unlink


def test_forked_child_closing_inherited_owner_does_not_unlink():
    ctx = multiprocessing.get_context("fork")
    with MatrixBuffer(
        create=True, locks=make_locks(NAME, context=ctx), name=NAME, shape=(2, 3)
    ) as mb:
        proc = ctx.Process(target=close_inherited, args=(mb,))
        proc.start()
        proc.join(timeout=30)
        assert proc.exitcode == 0
        assert exists(NAME)
        np.testing.assert_array_equal(mb.read(), rows(7, 1))


def test_failed_creation_leaves_nothing():
    with pytest.raises(OSError):  # 128 TiB cannot be mapped
        MatrixBuffer(create=True, locks=make_locks(NAME), name=NAME, shape=(2**44, 1))
    assert not exists(NAME)


WIDE, SLOTS, N_BATCHES = 64, 128, 400


def wide_writer(locks) -> None:
    """Batches of 1..40 rows; row k holds k in every column."""
    with MatrixBuffer(create=False, locks=locks, name=NAME) as mb:
        k = 0
        for b in range(N_BATCHES):
            n = b % 40 + 1
            mb.write(np.repeat(np.arange(k, k + n, dtype=np.float64)[:, None], WIDE, axis=1))
            k += n


@pytest.mark.parametrize("reader_lock", ["shared", "private"])
@pytest.mark.parametrize("method", METHODS)
def test_peak_sorted_never_torn_while_another_process_writes(method, reader_lock):
    """Also for a reader that cannot hold the writers' lock (a viewer attached from outside)."""
    ctx = multiprocessing.get_context(method)
    locks = make_locks(NAME, context=ctx)
    shape = (SLOTS, WIDE)
    with MatrixBuffer(create=True, locks=locks, name=NAME, shape=shape, overwrite=True) as mb:
        reader = mb
        if reader_lock == "private":
            reader = MatrixBuffer(create=False, locks={NAME: threading.Lock()}, name=NAME)
        proc = ctx.Process(target=wide_writer, args=(locks,))
        proc.start()
        while True:
            done = proc.exitcode is not None
            seen = reader.peak_sorted()
            filled = seen[~np.isnan(seen[:, 0])]
            assert (filled == filled[:, :1]).all()  # no row mixes two writes
            assert (np.diff(filled[:, 0]) == 1).all()  # and the slots are one moment's
            if done:
                break
        proc.join(timeout=30)
        assert proc.exitcode == 0
        assert reader.rows_written == sum(b % 40 + 1 for b in range(N_BATCHES))
        if reader is not mb:
            reader.close()


# --- peak_since: what a viewer polls -----------------------------------------------------------
def test_peak_since_returns_new_rows_and_the_total(mb):
    got, total = mb.peak_since(0)
    assert got.shape == (0, 3) and total == 0
    mb.write(rows(0, 3))
    got, total = mb.peak_since(0)
    np.testing.assert_array_equal(got, rows(0, 3))
    assert total == 3
    mb.read()  # consuming does not hide rows from peak_since
    mb.write(rows(3, 2))  # wraps the 4-row ring
    got, total = mb.peak_since(3)
    np.testing.assert_array_equal(got, rows(3, 2))
    assert total == 5
    got, total = mb.peak_since(5)
    assert got.shape == (0, 3) and total == 5
    assert mb.get_count_index() == 2 * 24  # nothing consumed by peaks


def test_peak_since_gives_at_most_capacity_newest_first_dropped():
    with MatrixBuffer(create=True, name=NAME, shape=(4, 3), overwrite=True) as buf:
        buf.write(rows(0, 3))
        buf.write(rows(3, 6))  # more than the ring holds
        got, total = buf.peak_since(0)
        np.testing.assert_array_equal(got, rows(5, 4))
        assert total == 9
        # a count from another buffer (larger than this one's total) counts as 0
        got, total = buf.peak_since(100)
        np.testing.assert_array_equal(got, rows(5, 4))
        with pytest.raises(ValueError, match="seen_rows"):
            buf.peak_since(-1)
    with pytest.raises(ValueError, match="closed"):
        buf.peak_since(0)


def steady_writer(namespace, n_rows) -> None:
    with MatrixBuffer(create=False, name="wide", namespace=namespace) as buf:
        k = 0
        while k < n_rows:
            block = np.repeat(np.arange(k, k + 3, dtype=np.float64)[:, None], 64, axis=1)
            buf.write(block)
            k += 3


@pytest.mark.parametrize("method", METHODS)
def test_peak_since_never_torn_while_another_process_writes(method):
    """Lock-free: each row holds one value in all its columns; totals and rows agree."""
    ctx = multiprocessing.get_context(method)
    n_rows, ns = 3000, f"ps{os.getpid()}"
    with MatrixBuffer(
        create=True, name="wide", shape=(16, 64), overwrite=True, namespace=ns
    ) as buf:
        proc = ctx.Process(target=steady_writer, args=(ns, n_rows))
        proc.start()
        seen, polls = 0, 0
        while seen < n_rows:
            got, total = buf.peak_since(seen)
            assert total >= seen and len(got) == min(total - seen, 16)
            if len(got):
                assert (got == got[:, :1]).all()  # no torn row
                np.testing.assert_array_equal(got[:, 0], np.arange(total - len(got), total))
            seen, polls = total, polls + 1
        proc.join(60)
        assert proc.exitcode == 0 and polls > 1
