"""VideoBuffer in one process: every documented method, the extensions, and a model check."""

import os
import stat

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from buffers import (
    BufferOverflow,
    BufferUnderflow,
    SegmentError,
    VideoBuffer,
    bit_to_dtype,
    int_to_uint_dtype,
    list_segments,
    make_locks,
    segment_name,
)
from tests.segments import SHM, segment_exists

W, H, N, S = 6, 4, 3, 2  # width, height, images per stack, stacks


def frame(i: int, dtype=np.uint16) -> np.ndarray:
    """A row-major (height, width) camera frame whose pixels encode ``i``."""
    return (np.arange(H * W, dtype=np.int64).reshape(H, W) + 100 * i).astype(dtype)


@pytest.fixture
def vb():
    with VideoBuffer(
        create=True, locks=make_locks(), n_stacks=S, width=W, height=H, n_images=N, bits=16
    ) as buf:
        yield buf


def test_dtypes():
    assert int_to_uint_dtype(8) is np.uint8 and int_to_uint_dtype(64) is np.uint64
    assert bit_to_dtype[16] is np.uint16
    with pytest.raises(ValueError):
        int_to_uint_dtype(12)


def test_attributes(vb):
    assert vb.name == "VideoBuffer"
    assert vb.stack_shape == (W, H, N) and vb.image_shape == (W, H)
    assert vb.dtype == np.uint16 and vb.itemsize == 2 and vb.n_images == N
    assert vb.n_total_images == N * S
    assert vb.image_size == W * H * 2 and vb.stack_size == W * H * 2 * N
    assert vb.buffer_size == vb.stack_size * S
    for attr in ("_shm_info", "_shm", "_ts_shm", "_idx_shm", "_buf", "_ts_buf", "_idx_buf"):
        assert getattr(vb, attr) is not None
    assert len(vb._buf) == vb.buffer_size


def test_write_read_image_roundtrip(vb):
    assert vb.get_level() == 0 and not vb.check_read_stack()
    with pytest.raises(BufferUnderflow):
        vb.read_image()
    vb.write_image_and_timestamp(frame(1).T, 1.5)
    vb.write_image_and_timestamp(frame(2).tobytes(), 2.5)  # bytes-like, row-major
    assert vb.get_level() == pytest.approx(2 / (N * S))
    image, ts = vb.read_image()
    assert image.shape == (W, H) and ts == 1.5
    np.testing.assert_array_equal(image, frame(1).T)
    image, ts = vb.read_image()
    np.testing.assert_array_equal(image, frame(2).T)
    # layout: the slot holds the camera's row-major bytes, as the reference stores them
    assert bytes(vb._buf[vb.image_size : 2 * vb.image_size]) == frame(2).tobytes()


def test_stacks(vb):
    for i in range(N):
        assert not vb.check_read_stack()
        vb.write_image_and_timestamp(frame(i).T, float(i))
    assert vb.check_read_stack() and vb.get_unread_stack_count() == 1
    stack, ts = vb.peak_stack()
    assert stack.shape == (W, H, N) and ts.dtype == np.float64
    np.testing.assert_array_equal(ts, [0.0, 1.0, 2.0])
    for i in range(N):
        np.testing.assert_array_equal(stack[:, :, i], frame(i).T)
    assert vb.get_unread_stack_count() == 1  # peak does not advance
    del stack
    vb.read_stack_no_return()
    assert vb.get_unread_stack_count() == 0
    with pytest.raises(BufferUnderflow):
        vb.peak_stack()
    with pytest.raises(BufferUnderflow):
        vb.read_stack_no_return()


def test_overflow_and_write_timestamp(vb):
    for i in range(N * S):
        vb.write_timestamp(float(i))
    with pytest.raises(BufferOverflow):
        vb.write_timestamp(99.0)
    with pytest.raises(BufferOverflow):
        vb.write_image_and_timestamp(frame(0).T, 99.0)
    assert vb.get_level() == 1.0
    assert vb.read_image()[1] == 0.0


@pytest.mark.parametrize(
    "bad",
    [frame(0), frame(0).T.astype(np.uint8), frame(0).T[:-1], b"\x00" * 3, 3.0, frame(0).T[::2]],
)
def test_bad_writes_leave_buffer_untouched(vb, bad):
    vb.write_image_and_timestamp(frame(7).T, 7.0)
    before = bytes(vb._buf), bytes(vb._idx_buf), bytes(vb._ts_buf)
    with pytest.raises(ValueError):
        vb.write_image_and_timestamp(bad, 1.0)
    assert (bytes(vb._buf), bytes(vb._idx_buf), bytes(vb._ts_buf)) == before


def test_strided_write_is_accepted(vb):
    big = np.zeros((H, 2 * W), np.uint16)
    big[:, ::2] = frame(3)
    vb.write_image_and_timestamp(big[:, ::2].T, 3.0)
    np.testing.assert_array_equal(vb.read_image()[0], frame(3).T)


def test_peak_image(vb):
    with pytest.raises(BufferUnderflow, match="no frame"):
        vb.peak_image()
    vb.write_image_and_timestamp(frame(1).T, 1.0)
    vb.write_image_and_timestamp(frame(2).T, 2.0)
    index, mv = vb.peak_image()
    assert index == 1
    image = np.frombuffer(mv, vb.dtype).reshape(vb.image_shape[::-1]).T
    np.testing.assert_array_equal(image, frame(2).T)
    vb.read_image()
    vb.read_image()
    assert vb.peak_image()[0] == 1  # the newest frame, even once read


def test_zero_copy_write(vb):
    slot = vb.begin_write()
    assert slot.shape == (H, W) and slot.flags.c_contiguous and slot.flags.writeable
    with pytest.raises(RuntimeError):
        vb.begin_write()
    slot[...] = frame(5)
    assert vb.get_level() == 0  # not visible until committed
    assert vb.commit_write(5.0) == 0
    vb.begin_write()[...] = frame(6)
    vb.abandon_write()
    vb.begin_write()[...] = frame(7)
    vb.commit_write(7.0)
    np.testing.assert_array_equal(vb.read_image()[0], frame(5).T)
    image, ts = vb.read_image()
    np.testing.assert_array_equal(image, frame(7).T)
    assert ts == 7.0 and vb.frames_written == 2
    with pytest.raises(RuntimeError):
        vb.commit_write(1.0)


def test_claims(vb):
    assert vb.claim_stack() is None
    for i in range(N * S):
        vb.write_image_and_timestamp(frame(i).T, float(i))
    a = vb.claim_stack()
    b = vb.claim_stack(timeout=1.0)
    assert (a.index, b.index) == (0, 1)
    np.testing.assert_array_equal(b.frame_numbers, [3, 4, 5])
    np.testing.assert_array_equal(b.timestamps, [3.0, 4.0, 5.0])
    np.testing.assert_array_equal(b.stack[:, :, 0], frame(3).T)
    assert vb.claim_stack() is None and vb.get_level() == 0
    assert [c[:2] for c in vb.list_claims()] == [(0, os.getpid()), (1, os.getpid())]
    with pytest.raises(BufferOverflow):  # stack 0 is held: never overwritten
        vb.write_image_and_timestamp(frame(9).T, 9.0)
    vb.release_stack(b)  # any order
    with pytest.raises(BufferOverflow):
        vb.write_image_and_timestamp(frame(9).T, 9.0)
    vb.release_stack(a)
    with pytest.raises(ValueError):
        vb.release_stack(a)
    vb.write_image_and_timestamp(frame(9).T, 9.0)
    assert vb.reclaim_dead_claims() == []


def test_blocking_timeouts_return(vb):
    assert vb.claim_stack(timeout=0.01) is None
    assert vb.wait_for_stack(timeout=0.01) is False
    for i in range(N * S):
        vb.write_timestamp(float(i))
    assert vb.wait_for_stack(timeout=0.01) is True
    with pytest.raises(BufferOverflow):
        vb.begin_write(timeout=0.01)


def test_attach_checks_and_namespaces(vb):
    locks = make_locks()
    with VideoBuffer(create=False, locks=locks) as other:
        assert other.stack_shape == vb.stack_shape
        vb.write_image_and_timestamp(frame(4).T, 4.0)
        np.testing.assert_array_equal(other.read_image()[0], frame(4).T)
    with pytest.raises(SegmentError):
        VideoBuffer(create=False, locks=locks, width=W + 1)
    with pytest.raises(FileExistsError):
        VideoBuffer(create=True, locks=locks, n_stacks=1, width=1, height=1, n_images=1, bits=8)
    with VideoBuffer(
        create=True, locks=locks, n_stacks=1, width=1, height=1, n_images=1, bits=8, namespace="b"
    ) as b:
        assert b.stack_shape == (1, 1, 1)
    with pytest.raises(FileNotFoundError):
        VideoBuffer(create=False, locks=locks, namespace="nothere")


def test_bad_construction_leaves_nothing():
    entries = {info.name for info in list_segments()}
    with pytest.raises(ValueError):
        VideoBuffer(create=True, locks=make_locks(), n_stacks=1, width=2, height=2, n_images=1)
    with pytest.raises(ValueError):
        VideoBuffer(create=True, locks=None, n_stacks=1, width=2, height=0, n_images=1, bits=8)
    with pytest.raises(ValueError):
        VideoBuffer(
            create=True, locks=make_locks(), n_stacks=1, width=2, height=2, n_images=1, bits=12
        )
    assert {info.name for info in list_segments()} == entries
    assert not segment_exists(segment_name("VideoBuffer"))


def test_close_unlinks_and_owner_only(vb):
    name = vb._seg.name
    if SHM.is_dir():  # Linux: shared memory is files there
        assert stat.S_IMODE((SHM / name).stat().st_mode) == 0o600
    attached = VideoBuffer(create=False, locks=make_locks())
    attached.close()
    assert attached.closed and not vb.closed
    assert segment_exists(name)  # an attacher only unmaps
    vb.close()
    vb.close()
    assert not segment_exists(name) and vb.closed


def test_reference_style_locks_dict_still_works():
    import multiprocessing

    locks = {"VideoBuffer": multiprocessing.Lock()}  # no semaphores: waits poll
    with VideoBuffer(
        create=True, locks=locks, n_stacks=1, width=2, height=2, n_images=1, bits=8
    ) as vb:
        assert vb.claim_stack(timeout=0.005) is None
        vb.write_timestamp(1.0)
        assert vb.claim_stack(timeout=1.0).frame_numbers.tolist() == [0]


class VideoModel(RuleBasedStateMachine):
    """Random sequences of operations against a list-of-frames model."""

    def __init__(self):
        super().__init__()
        self.vb = VideoBuffer(
            create=True, locks=make_locks(), n_stacks=S, width=W, height=H, n_images=N, bits=16
        )
        self.unread: list[int] = []  # frame numbers, oldest first
        self.claims: list = []  # (claim, frame numbers)
        self.next = 0
        self.consumed = 0  # frames taken off the read index

    @property
    def stack_mode(self) -> bool:
        return self.consumed % N == 0  # claims need a stack-aligned read index

    def teardown(self):
        self.claims.clear()
        self.vb.close()

    def held(self) -> int:
        return N * len(self.claims)

    def can_write(self) -> bool:
        if len(self.unread) + self.held() >= N * S:
            return False
        w = self.next % (N * S) // N
        return all(c.index != w for c, _ in self.claims)

    @rule(zero_copy=st.booleans())
    def write(self, zero_copy):
        if not self.can_write():
            with pytest.raises(BufferOverflow):
                self.vb.write_image_and_timestamp(frame(self.next).T, float(self.next))
            return
        if zero_copy:
            self.vb.begin_write()[...] = frame(self.next)
            self.vb.commit_write(float(self.next))
        else:
            self.vb.write_image_and_timestamp(frame(self.next).T, float(self.next))
        self.unread.append(self.next)
        self.next += 1

    @precondition(lambda self: not self.claims)
    @rule()
    def read_image(self):
        if not self.unread:
            with pytest.raises(BufferUnderflow):
                self.vb.read_image()
            return
        image, ts = self.vb.read_image()
        i = self.unread.pop(0)
        np.testing.assert_array_equal(image, frame(i).T)
        assert ts == float(i)
        self.consumed += 1

    @rule()
    def read_stack(self):
        if len(self.unread) < N:
            with pytest.raises(BufferUnderflow):
                self.vb.peak_stack()
            return
        stack, ts = self.vb.peak_stack()
        want = self.unread[:N]
        np.testing.assert_array_equal(ts, [float(i) for i in want])
        for k, i in enumerate(want):
            np.testing.assert_array_equal(stack[:, :, k], frame(i).T)
        del stack
        self.vb.read_stack_no_return()
        del self.unread[:N]
        self.consumed += N

    @precondition(lambda self: self.stack_mode)
    @rule()
    def claim(self):
        c = self.vb.claim_stack()
        if len(self.unread) < N:
            assert c is None
            return
        want = self.unread[:N]
        del self.unread[:N]
        self.consumed += N
        assert c.frame_numbers.tolist() == want
        np.testing.assert_array_equal(c.stack[:, :, N - 1], frame(want[-1]).T)
        self.claims.append((c, want))

    @precondition(lambda self: self.claims)
    @rule(k=st.integers(0, S - 1))
    def release(self, k):
        c, _ = self.claims.pop(k % len(self.claims))
        self.vb.release_stack(c)

    @precondition(lambda self: self.next > 0)
    @rule()
    def peak_image(self):
        _, mv = self.vb.peak_image()
        got = np.frombuffer(mv, self.vb.dtype).reshape(H, W)
        np.testing.assert_array_equal(got, frame(self.next - 1))

    @invariant()
    def levels(self):
        assert self.vb.get_level() == len(self.unread) / (N * S)
        assert self.vb.get_unread_stack_count() == len(self.unread) // N
        assert self.vb.check_read_stack() == (len(self.unread) >= N)


VideoModel.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_video_model = VideoModel.TestCase
