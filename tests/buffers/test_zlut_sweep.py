"""ZLUTSweepDataset: create/attach, states, validation, never wrapping, a model check, writers in
real processes (fork and spawn) and a SIGKILLed creator."""

import multiprocessing
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buffers import (
    BufferOverflow,
    DatasetAbsentError,
    DatasetNotReadyError,
    MatrixBuffer,
    SegmentError,
    ZLUTSweepDataset,
    make_locks,
)
from buffers._segment import STATE_CREATING, Segment, segment_name
from tests.segments import segment_exists

Z = ZLUTSweepDataset
NAME = Z.NAME
GEOMETRY = dict(capacity=6, profile_length=4, n_steps=3, n_beads=2, profiles_per_bead=1)
METHODS = ["fork", "spawn"]


def batch(bead: int, steps: list[int], length: int = 4) -> dict[str, np.ndarray]:
    """Rows whose every field encodes (bead, step)."""
    s = np.asarray(steps)
    code = bead * 1000 + s
    return dict(
        bead_ids=np.full(len(s), bead),
        step_indices=s,
        timestamps=code / 10,
        motor_z_values=code * 2.0,
        valid_flags=s % 2 == 0,
        profiles=code[:, None] + np.zeros((len(s), length)),
    )


@pytest.fixture
def ds():
    with Z.create(locks=make_locks(NAME), **GEOMETRY) as dataset:
        yield dataset


def exists(name: str = NAME) -> bool:
    return segment_exists(segment_name(name))


def test_constants_and_attributes(ds):
    states = [
        Z.STATE_ABSENT,
        Z.STATE_CREATING,
        Z.STATE_READY,
        Z.STATE_CAPTURING,
        Z.STATE_COMPLETE,
        Z.STATE_DETACHING,
        Z.STATE_FAILED,
        Z.STATE_DESTROYED,
    ]
    assert states == list(range(8))
    assert Z._SCHEMA_VERSION == 1 and Z._INFO_SIZE == 64 and len(Z._INFO_FIELDS) == 8
    assert ds.name == NAME and ds.state == Z.STATE_READY
    assert ds.get_count() == 0 and ds.get_capacity() == 6
    for key, value in GEOMETRY.items():
        assert getattr(ds, key) == value
    assert ds._owns_shared_memory and not ds._closed
    for attr in Z._SHM_ATTRS:
        assert getattr(ds, attr) is not None
    assert ds._profiles.shape == (6, 4) and ds._profiles.dtype == Z._PROFILE_DTYPE
    assert ds._bead_ids.dtype == np.uint32 and ds._valid.dtype == np.uint8
    for array in (ds._bead_ids, ds._timestamps, ds._profiles):
        assert array.ctypes.data % 64 == 0  # each column starts cache-line aligned


def test_write_then_peak(ds):
    ds.write(**batch(1, [0, 1]))
    ds.write(**batch(0, [2]))
    got = ds.peak()
    assert ds.get_count() == 3
    assert got["bead_ids"].tolist() == [1, 1, 0] and got["bead_ids"].dtype == np.uint32
    assert got["step_indices"].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(got["timestamps"], [100.0, 100.1, 0.2])
    np.testing.assert_array_equal(got["motor_z_values"], [2000.0, 2002.0, 4.0])
    assert got["valid_flags"].tolist() == [1, 0, 1] and got["valid_flags"].dtype == np.uint8
    np.testing.assert_array_equal(got["profiles"][:, 0], [1000, 1001, 2])
    got["profiles"][:] = 0  # copies
    assert ds.peak()["profiles"][0, 0] == 1000


def test_never_wraps_and_overflow_writes_nothing(ds):
    ds.write(**batch(0, [0, 1, 2, 3]))
    with pytest.raises(BufferOverflow):
        ds.write(**batch(1, [0, 1, 2]))
    assert ds.get_count() == 4
    ds.write(**batch(1, [0, 1]))  # exactly full
    assert ds.get_count() == 6
    with pytest.raises(BufferOverflow):
        ds.write(**batch(1, [2]))
    assert ds.peak()["bead_ids"].tolist() == [0, 0, 0, 0, 1, 1]
    ds.write(**batch(1, []))  # an empty batch always fits


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(step_indices=np.array([0])), "step_indices"),
        (dict(timestamps=np.zeros(3)), "timestamps"),
        (dict(motor_z_values=np.zeros((2, 1))), "motor_z_values"),
        (dict(valid_flags=np.array([1, 2])), "valid_flags"),
        (dict(profiles=np.zeros((2, 5))), "profiles"),
        (dict(profiles=np.zeros(8)), "profiles"),
        (dict(bead_ids=np.array([-1, 0])), "bead_ids"),
        (dict(bead_ids=np.array([0.5, 1])), "bead_ids"),
        (dict(bead_ids=np.array(["a", "b"])), "bead_ids"),
        (dict(step_indices=np.array([0, 2**32])), "step_indices"),
        (dict(timestamps=np.zeros(2, complex)), "timestamps"),
    ],
)
def test_bad_batches_raise_and_write_nothing(ds, change, match):
    ds.write(**batch(0, [0]))
    with pytest.raises(ValueError, match=match):
        ds.write(**(batch(1, [0, 1]) | change))
    assert ds.get_count() == 1


def test_integral_float_ids_are_accepted(ds):
    ds.write(**(batch(1, [0, 1]) | dict(bead_ids=np.array([1.0, 1.0]))))
    assert ds.peak()["bead_ids"].tolist() == [1, 1]


def test_read_preview(ds):
    empty = ds.read_preview()
    assert empty["count"] == 0 and empty["available_bead_ids"] == []
    assert empty["selected_bead_id"] is None and empty["motor_z_min"] is None
    assert empty["profiles"].shape == (0, 4)
    ds.write(**batch(3, [0, 1]))
    ds.write(**(batch(1, [0]) | dict(motor_z_values=np.array([np.nan]))))
    preview = ds.read_preview(3)
    assert preview["selected_bead_id"] == 3 and preview["available_bead_ids"] == [1, 3]
    assert preview["step_indices"].tolist() == [0, 1]
    np.testing.assert_array_equal(preview["motor_z_values"], [6000.0, 6002.0])
    assert preview["profiles"].shape == (2, 4)
    assert (preview["motor_z_min"], preview["motor_z_max"]) == (6000.0, 6002.0)
    for key, value in GEOMETRY.items():
        assert preview[key] == value
    assert preview["state"] == Z.STATE_READY and preview["count"] == 3
    assert ds.read_preview(99)["selected_bead_id"] == 1  # absent: the lowest id that has rows
    assert ds.read_preview()["selected_bead_id"] == 1


def test_create_validates_parameters():
    locks = make_locks(NAME)
    with pytest.raises(ValueError, match="n_beads"):
        Z.create(locks=locks, **(GEOMETRY | dict(n_beads=None)))
    with pytest.raises(ValueError, match="capacity"):
        Z.create(locks=locks, **(GEOMETRY | dict(capacity=0)))
    with pytest.raises(ValueError, match="profile_length"):
        Z(create=True, locks=locks, **(GEOMETRY | dict(profile_length=2.5)))
    assert not exists()


def test_states_and_attach(ds):
    locks = {NAME: ds.lock}
    peer = Z.attach(locks=locks)
    assert peer.capacity == 6 and peer.state == Z.STATE_READY and not peer._owns_shared_memory
    ds.set_state(Z.STATE_CAPTURING)
    assert peer.state == Z.STATE_CAPTURING
    ds.write(**batch(0, [0]))
    assert peer.get_count() == 1 and peer.peak()["bead_ids"].tolist() == [0]
    peer.write(**batch(1, [0]))
    assert ds.get_count() == 2
    with pytest.raises(ValueError):
        ds.set_state(8)
    with pytest.raises(RuntimeError, match="creating process"):
        peer.destroy()
    peer.close()
    assert peer._closed and peer.closed and exists()
    with pytest.raises(RuntimeError, match="closed"):
        peer.get_count()
    with pytest.raises(RuntimeError, match="closed"):
        peer.write(**batch(0, [1]))
    for state in (Z.STATE_COMPLETE, Z.STATE_FAILED):
        ds.set_state(state)
        Z.attach(locks=locks).close()
    for state in (Z.STATE_ABSENT, Z.STATE_CREATING, Z.STATE_DETACHING, Z.STATE_DESTROYED):
        ds.set_state(state)
        with pytest.raises(DatasetNotReadyError, match=f"state {state}"):
            Z.attach(locks=locks)


def test_attach_checks_geometry_given(ds):
    locks = {NAME: ds.lock}
    with pytest.raises(ValueError, match="capacity"):
        Z(create=False, locks=locks, capacity=7)
    with pytest.raises(ValueError, match="profile_length"):
        Z(create=False, locks=locks, profile_length=5)
    Z(create=False, locks=locks, capacity=6, profile_length=4).close()


def test_attach_when_absent_is_clear():
    with pytest.raises(DatasetAbsentError, match="not created yet") as info:
        Z.attach(locks=make_locks(NAME))
    assert isinstance(info.value, DatasetNotReadyError)
    assert isinstance(info.value, FileNotFoundError)


def test_attach_while_segment_is_being_created():
    seg = Segment.create(NAME, kind="ZLUTSweepDataset", size=64)
    seg.state = STATE_CREATING
    try:
        with pytest.raises(DatasetNotReadyError, match="being created"):
            Z.attach(locks=make_locks(NAME))
    finally:
        seg.unlink()
        seg.close()


def test_attach_other_kind_or_schema_is_a_clear_error():
    locks = make_locks(NAME)
    with MatrixBuffer(create=True, locks=locks, name=NAME, shape=(2, 2)):
        with pytest.raises(SegmentError, match="MatrixBuffer, not a ZLUTSweepDataset"):
            Z.attach(locks=locks)
    seg = Segment.create(NAME, kind="ZLUTSweepDataset", size=64, schema=2)
    try:
        with pytest.raises(SegmentError, match="schema version 2"):
            Z.attach(locks=locks)
    finally:
        seg.unlink()
        seg.close()


def test_owner_close_destroys_and_peer_sees_it():
    locks = make_locks(NAME)
    owner = Z.create(locks=locks, **GEOMETRY)
    peer = Z.attach(locks=locks)
    owner.close()
    assert owner._closed and owner.closed and not exists()
    assert peer.state == Z.STATE_DESTROYED  # still mapped, told it is gone
    peer.close()
    owner.destroy()  # idempotent
    with pytest.raises(DatasetAbsentError):
        Z.attach(locks=locks)


def test_destroy_and_context_exit_unlink():
    locks = make_locks(NAME)
    ds = Z.create(locks=locks, **GEOMETRY)
    ds.destroy()
    assert ds._closed and not exists()
    with Z.create(locks=locks, **GEOMETRY):
        assert exists()
    assert not exists()
    ds = Z.create(locks=locks, **GEOMETRY)
    del ds
    assert not exists()


def test_second_create_refused_while_owner_lives(ds):
    with pytest.raises(FileExistsError):
        Z.create(locks={NAME: ds.lock}, **GEOMETRY)
    assert ds.state == Z.STATE_READY


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**32 - 1), max_size=5), max_size=8))
def test_model_appends_until_full(batches):
    cap = 7
    rows: list[int] = []
    with Z.create(locks=make_locks(NAME), **(GEOMETRY | dict(capacity=cap))) as ds:
        for ids in batches:
            b = dict(
                bead_ids=np.array(ids, np.uint32),
                step_indices=np.array(ids, np.uint32),
                timestamps=np.array(ids, float),
                motor_z_values=-np.array(ids, float),
                valid_flags=np.ones(len(ids), bool),
                profiles=np.repeat(np.array(ids, float)[:, None], 4, axis=1),
            )
            if len(rows) + len(ids) > cap:
                with pytest.raises(BufferOverflow):
                    ds.write(**b)
            else:
                ds.write(**b)
                rows += ids
            got = ds.peak()
            assert ds.get_count() == len(rows)
            assert got["bead_ids"].tolist() == rows == got["step_indices"].tolist()
            np.testing.assert_array_equal(got["motor_z_values"], -np.array(rows, float))
            np.testing.assert_array_equal(got["profiles"][:, 3], rows)


# --- real processes ----------------------------------------------------------------------
N_WRITERS, STEPS = 3, 60


def sweep_writer(locks, bead: int) -> None:
    """Attach (waiting until the dataset exists) and append STEPS rows in batches of 1..4."""
    while True:
        try:
            ds = Z.attach(locks=locks)
            break
        except DatasetNotReadyError:
            time.sleep(0.01)
    with ds:
        step = 0
        while step < STEPS:
            n = min(step % 4 + 1, STEPS - step)
            ds.write(**batch(bead, list(range(step, step + n))))
            step += n


@pytest.mark.parametrize("method", METHODS)
def test_writers_in_processes_fill_exactly(method):
    ctx = multiprocessing.get_context(method)
    locks = make_locks(NAME, context=ctx)
    procs = [ctx.Process(target=sweep_writer, args=(locks, b)) for b in range(N_WRITERS)]
    for p in procs:  # started before the dataset exists: they wait for it
        p.start()
    geometry = GEOMETRY | dict(capacity=N_WRITERS * STEPS, n_beads=N_WRITERS, n_steps=STEPS)
    with Z.create(locks=locks, **geometry) as ds:
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert ds.get_count() == ds.get_capacity()
        got = ds.peak()
        with pytest.raises(BufferOverflow):
            ds.write(**batch(0, [0]))
    code = got["bead_ids"].astype(np.int64) * 1000 + got["step_indices"]
    np.testing.assert_array_equal(got["profiles"][:, 0], code)  # rows aligned across columns
    np.testing.assert_array_equal(got["motor_z_values"], code * 2.0)
    for b in range(N_WRITERS):
        steps = got["step_indices"][got["bead_ids"] == b]
        assert steps.tolist() == list(range(STEPS))  # each once, in order


def test_failed_creation_leaves_nothing():
    with pytest.raises(OSError):  # 128 TiB of profiles cannot be mapped
        Z.create(locks=make_locks(NAME), **(GEOMETRY | dict(capacity=2**42)))
    assert not exists()
