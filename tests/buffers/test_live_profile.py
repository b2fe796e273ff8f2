"""LiveProfileBuffer: every documented method, validation, a model check, and a reader in one
process while another writes (fork and spawn): never a torn profile."""

import multiprocessing
import os
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buffers import LiveProfileBuffer, MatrixBuffer, SegmentError, make_locks
from buffers._segment import segment_name
from tests.segments import segment_exists

NAME = "LiveProfileBuffer"
CAP = 6
METHODS = ["fork", "spawn"]


@pytest.fixture
def lp():
    with LiveProfileBuffer(create=True, locks=make_locks(NAME), profile_capacity=CAP) as buf:
        yield buf


def test_attributes_and_initial_nan(lp):
    assert lp.profile_capacity == CAP and lp.shape == (1, 3 + CAP)
    assert lp.name == NAME and isinstance(lp._buffer, MatrixBuffer)
    row = lp.peak_unsorted()
    assert row.shape == (1, 3 + CAP) and row.dtype == np.float64 and np.isnan(row).all()


def test_write_profile_pads_with_nan_and_replaces(lp):
    lp.write_profile(1.5, 7, np.array([1.0, 2.0, 3.0, 4.0]))
    lp.write_profile(2.5, 3, np.array([9, 8], np.int16))
    row = lp.peak_unsorted()[0]
    np.testing.assert_array_equal(row[:5], [2.5, 3, 2, 9, 8])
    assert np.isnan(row[5:]).all()
    lp.write_profile(3.0, 1, np.arange(CAP))  # exactly full
    np.testing.assert_array_equal(lp.peak_unsorted()[0], [3.0, 1, CAP, *range(CAP)])
    lp.write_profile(4.0, 2, np.array([]))
    row = lp.peak_unsorted()[0]
    np.testing.assert_array_equal(row[:3], [4.0, 2, 0])
    assert np.isnan(row[3:]).all()


def test_clear_resets_to_nan(lp):
    lp.write_profile(1.0, 1, np.ones(3))
    lp.clear()
    assert np.isnan(lp.peak_unsorted()).all()


@pytest.mark.parametrize(
    "profile", [np.ones(CAP + 1), np.ones((2, 2)), np.ones(2, complex), np.array(["a"])]
)
def test_bad_profile_raises_and_keeps_previous(lp, profile):
    lp.write_profile(1.0, 1, np.ones(2))
    before = lp.peak_unsorted()
    with pytest.raises(ValueError):
        lp.write_profile(2.0, 2, profile)
    np.testing.assert_array_equal(lp.peak_unsorted(), before)


def test_create_needs_capacity_and_attach_checks(lp):
    locks = {NAME: lp._buffer.lock, "other": lp._buffer.lock}
    with pytest.raises(ValueError, match="profile_capacity"):
        LiveProfileBuffer(create=True, locks=locks, name="other")
    with pytest.raises(SegmentError, match="geometry"):
        LiveProfileBuffer(create=False, locks=locks, profile_capacity=CAP + 1)
    peer = LiveProfileBuffer(create=False, locks=locks)
    assert peer.profile_capacity == CAP
    lp.write_profile(5.0, 4, np.ones(1))
    assert peer.peak_unsorted()[0, :4].tolist() == [5.0, 4, 1, 1]
    peer.close()
    assert not lp.closed


def test_attach_to_other_kind_is_a_clear_error():
    locks = make_locks("m")
    with MatrixBuffer(create=True, locks=locks, name="m", shape=(1, 5)):
        with pytest.raises(SegmentError, match="MatrixBuffer, not a LiveProfileBuffer"):
            LiveProfileBuffer(create=False, locks=locks, name="m")


def test_close_unlinks(lp):
    assert segment_exists(segment_name(NAME))
    lp.close()
    assert lp.closed and not segment_exists(segment_name(NAME))
    lp.close()
    with pytest.raises(ValueError, match="closed"):
        lp.peak_unsorted()


ops = st.lists(
    st.one_of(
        st.none(),  # clear
        st.tuples(
            st.floats(allow_nan=False),
            st.integers(0, 2**31),
            st.lists(st.floats(-1e9, 1e9), max_size=CAP + 2),
        ),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_model_last_write_wins(sequence):
    expected = np.full((1, 3 + CAP), np.nan)
    with LiveProfileBuffer(create=True, locks=make_locks(NAME), profile_capacity=CAP) as lp:
        for op in sequence:
            if op is None:
                lp.clear()
                expected[:] = np.nan
                continue
            ts, bead, samples = op
            if len(samples) > CAP:
                with pytest.raises(ValueError):
                    lp.write_profile(ts, bead, np.array(samples))
            else:
                lp.write_profile(ts, bead, np.array(samples, float))
                expected[:] = np.nan
                expected[0, :3] = (ts, bead, len(samples))
                expected[0, 3 : 3 + len(samples)] = samples
            np.testing.assert_array_equal(lp.peak_unsorted(), expected)


# --- real processes ----------------------------------------------------------------------
N_PROFILES, BIG = 2000, 4096  # long profiles: a torn copy would be likely


def profile_writer(locks, n: int) -> None:
    """Profile k: timestamp k, bead k, k % BIG + 1 samples all equal to k."""
    with LiveProfileBuffer(create=False, locks=locks) as lp:
        for k in range(1, n + 1):
            lp.write_profile(float(k), k, np.full(k * 997 % BIG + 1, float(k)))


@pytest.mark.parametrize("reader_lock", ["shared", "private"])
@pytest.mark.parametrize("method", METHODS)
def test_reader_never_sees_a_torn_profile(method, reader_lock):
    """Also for a reader that cannot hold the writers' lock (a viewer attached from outside)."""
    ctx = multiprocessing.get_context(method)
    locks = make_locks(NAME, context=ctx)
    with LiveProfileBuffer(create=True, locks=locks, profile_capacity=BIG) as lp:
        reader = lp
        if reader_lock == "private":
            reader = LiveProfileBuffer(create=False, locks={NAME: threading.Lock()})
        proc = ctx.Process(target=profile_writer, args=(locks, N_PROFILES))
        proc.start()
        last = 0.0
        while True:
            done = proc.exitcode is not None
            row = reader.peak_unsorted()[0]
            if not np.isnan(row[0]):
                k = row[0]
                n = int(row[2])
                assert k >= last and row[1] == k and n == int(k) * 997 % BIG + 1
                assert (row[3 : 3 + n] == k).all() and np.isnan(row[3 + n :]).all()
                last = k
            if done:
                break
        proc.join(timeout=30)
        assert proc.exitcode == 0 and last == N_PROFILES
        if reader is not lp:
            reader.close()


# --- selected_bead_id: which bead a viewer wants --------------------------------------------
def test_selected_bead_id_defaults_to_none_and_validates(lp):
    assert lp.selected_bead_id is None
    lp.selected_bead_id = 3
    assert lp.selected_bead_id == 3
    lp.selected_bead_id = np.int64(0)
    assert lp.selected_bead_id == 0
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(ValueError, match="selected_bead_id"):
            lp.selected_bead_id = bad
    assert lp.selected_bead_id == 0
    lp.selected_bead_id = None
    assert lp.selected_bead_id is None
    lp.write_profile(1.0, 2, np.arange(3.0))  # profiles leave the selection alone
    assert lp.selected_bead_id is None


def select(namespace, bead_id) -> None:
    with LiveProfileBuffer(create=False, locks=None, namespace=namespace) as lp:
        lp.selected_bead_id = bead_id


@pytest.mark.parametrize("method", METHODS)
def test_selected_bead_id_is_seen_by_other_processes(method):
    ctx = multiprocessing.get_context(method)
    ns = f"sel{method}{os.getpid()}"
    with LiveProfileBuffer(create=True, profile_capacity=CAP, namespace=ns) as lp:
        p = ctx.Process(target=select, args=(ns, 7))
        p.start()
        p.join(60)
        assert p.exitcode == 0
        assert lp.selected_bead_id == 7
        peer = LiveProfileBuffer(create=False, namespace=ns)
        peer.selected_bead_id = None
        assert lp.selected_bead_id is None
        peer.close()
