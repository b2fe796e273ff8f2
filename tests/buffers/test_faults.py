"""The buffers' own segment locks, across real processes: holders killed with SIGKILL (holding
the lock, or half-way through a change), processes that are not children of the run, forks."""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from buffers import (
    BeadRoiBuffer,
    LiveProfileBuffer,
    MatrixBuffer,
    VideoBuffer,
    ZLUTSweepDataset,
    list_segments,
    make_locks,
)

METHODS = ["fork", "spawn"]
W, H, N = 8, 6, 2


def ns(tag: str) -> str:
    return f"{tag}{os.getpid()}"


def frame(i: int) -> np.ndarray:
    return np.full((H, W), i, np.uint16)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


# --- a creator SIGKILLed: its segments are reclaimed by the next creator ----------------------
KINDS = ["video", "matrix", "bead_roi", "live_profile", "zlut_sweep"]


def create(kind: str, namespace: str, size: int):
    """A new buffer of ``kind`` whose geometry :func:`size_of` reads back as ``size``."""
    if kind == "video":
        return VideoBuffer(create=True, n_stacks=size, width=4, height=3, n_images=1, bits=8,
                           namespace=namespace)  # fmt: skip
    if kind == "matrix":
        return MatrixBuffer(create=True, name="m", shape=(size, 2), namespace=namespace)
    if kind == "bead_roi":
        return BeadRoiBuffer(create=True, capacity=size, namespace=namespace)
    if kind == "live_profile":
        return LiveProfileBuffer(create=True, profile_capacity=size, namespace=namespace)
    return ZLUTSweepDataset.create(capacity=size, profile_length=4, n_steps=3, n_beads=2,
                                   profiles_per_bead=1, namespace=namespace)  # fmt: skip


def size_of(buf) -> int:
    if isinstance(buf, VideoBuffer):
        return buf.n_stacks
    if isinstance(buf, MatrixBuffer):
        return buf.shape[0]
    if isinstance(buf, BeadRoiBuffer):
        return buf.capacity
    if isinstance(buf, LiveProfileBuffer):
        return buf.profile_capacity
    return buf.get_capacity()


def create_and_hang(kind, namespace, ready):
    buf = create(kind, namespace, 2)  # noqa: F841 (held until the kill)
    ready.set()
    time.sleep(600)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHODS)
def test_segment_of_sigkilled_creator_is_reclaimed(method, kind):
    ctx = multiprocessing.get_context(method)
    namespace = ns("reclaim")
    segments = lambda: list_segments(namespace)  # noqa: E731
    ready = ctx.Event()
    proc = ctx.Process(target=create_and_hang, args=(kind, namespace, ready))
    proc.start()
    assert ready.wait(60)
    with pytest.raises(FileExistsError):  # its owner is alive
        create(kind, namespace, 3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    assert segments()  # left behind by the killed creator
    with create(kind, namespace, 3) as buf:
        assert size_of(buf) == 3
    assert not segments()


# --- a holder SIGKILLed while holding the lock -----------------------------------------------
def hold_and_die(kind, locks, namespace, holding):
    if kind == "matrix":
        buf = MatrixBuffer(create=False, locks=locks, name="m", namespace=namespace)
    else:
        buf = VideoBuffer(create=False, locks=locks, namespace=namespace)
    buf.lock.acquire()
    holding.set()
    kill_self()


def matrix_writer(locks, namespace, value):
    with MatrixBuffer(create=False, locks=locks, name="m", namespace=namespace) as mb:
        mb.write([[value, value]])


def video_producer(locks, namespace, first, n):
    with VideoBuffer(create=False, locks=locks, namespace=namespace) as vb:
        for i in range(first, first + n):
            vb.write_image_and_timestamp(frame(i).T, float(i), timeout=None)


@pytest.mark.parametrize("method", METHODS)
def test_matrix_holder_killed_holding_the_lock_blocks_nobody(method):
    ctx = multiprocessing.get_context(method)
    locks, holding = make_locks("m", context=ctx), ctx.Event()
    with MatrixBuffer(create=True, locks=locks, name="m", shape=(4, 2), namespace=ns("k")) as mb:
        p = ctx.Process(target=hold_and_die, args=("matrix", locks, ns("k"), holding))
        p.start()
        assert holding.wait(60)
        p.join(60)
        assert p.exitcode == -signal.SIGKILL
        # another process writes, this one reads: the kernel freed the dead holder's lock
        w = ctx.Process(target=matrix_writer, args=(locks, ns("k"), 7.0))
        w.start()
        w.join(60)
        assert w.exitcode == 0
        np.testing.assert_array_equal(mb.read(), [[7.0, 7.0]])
        assert mb.repairs == 0  # it held the lock but changed nothing


@pytest.mark.parametrize("method", METHODS)
def test_video_holder_killed_holding_the_lock_blocks_nobody(method):
    ctx = multiprocessing.get_context(method)
    locks, holding = make_locks(context=ctx), ctx.Event()
    with VideoBuffer(
        create=True, locks=locks, n_stacks=2, width=W, height=H, n_images=N, bits=16,
        namespace=ns("kv"),
    ) as vb:  # fmt: skip
        p = ctx.Process(target=hold_and_die, args=("video", locks, ns("kv"), holding))
        p.start()
        assert holding.wait(60)
        p.join(60)
        assert p.exitcode == -signal.SIGKILL
        prod = ctx.Process(target=video_producer, args=(locks, ns("kv"), 0, N))
        prod.start()
        prod.join(60)
        assert prod.exitcode == 0
        claim = vb.claim_stack(timeout=None)
        assert claim.frame_numbers.tolist() == [0, 1]
        vb.release_stack(claim)
        del claim


# --- a writer SIGKILLed half-way through a change ----------------------------------------------
def matrix_write_and_die(locks, namespace):
    mb = MatrixBuffer(create=False, locks=locks, name="m", namespace=namespace)
    mb._fault_point = kill_self
    mb.write(np.full((3, 2), 9.0))  # wraps: dies after the first part


@pytest.mark.parametrize("method", METHODS)
def test_matrix_write_killed_midway_is_rolled_back(method):
    ctx = multiprocessing.get_context(method)
    locks = make_locks("m", context=ctx)
    with MatrixBuffer(create=True, locks=locks, name="m", shape=(4, 2), namespace=ns("w")) as mb:
        mb.write([[1, 1], [2, 2], [3, 3]])
        assert mb.read().shape == (3, 2)
        mb.write([[4, 4]])
        p = ctx.Process(target=matrix_write_and_die, args=(locks, ns("w")))
        p.start()
        p.join(60)
        assert p.exitcode == -signal.SIGKILL
        # a lock-free reader finds the counter odd, takes the lock once, which repairs
        rows, total = mb.peak_since(3)
        assert total == 4
        np.testing.assert_array_equal(rows, [[4, 4]])
        assert mb.repairs == 1
        assert mb.rows_written == 4 and mb.get_count_index() == 16
        np.testing.assert_array_equal(mb.read(), [[4, 4]])
        mb.write([[5, 5]])  # writers carry on
        np.testing.assert_array_equal(mb.read(), [[5, 5]])
        # the rows the dead writer was writing are NaN, not half of its data
        assert not (mb.peak_unsorted() == 9.0).any()


def rois_change_and_die(locks, namespace):
    br = BeadRoiBuffer(create=False, locks=locks, namespace=namespace)
    br._fault_point = kill_self
    br.replace_beads({5: (1, 2, 3, 4)})


@pytest.mark.parametrize("method", METHODS)
def test_bead_roi_change_killed_midway_is_undone(method):
    ctx = multiprocessing.get_context(method)
    locks = make_locks(context=ctx)
    with BeadRoiBuffer(create=True, locks=locks, capacity=8, namespace=ns("r")) as br:
        br.add_beads({0: (0, 4, 0, 4), 1: (4, 8, 4, 8)})
        br.set_reference([1])
        before = br.snapshot_with_reference()
        p = ctx.Process(target=rois_change_and_die, args=(locks, ns("r")))
        p.start()
        p.join(60)
        assert p.exitcode == -signal.SIGKILL
        version, ids, rois, ref = br.snapshot_with_reference()
        assert version > before[0]  # cached readers refresh
        np.testing.assert_array_equal(ids, before[1])
        np.testing.assert_array_equal(rois, before[2])
        np.testing.assert_array_equal(ref, before[3])
        assert br.repairs == 1 and br.active_count == 2 and br.max_id_plus_one == 2
        br.add_beads({2: (1, 2, 1, 2)})
        assert br.get_beads()[0].tolist() == [0, 1, 2]


def commit_and_die(locks, namespace, zero_copy):
    vb = VideoBuffer(create=False, locks=locks, namespace=namespace)
    vb.write_image_and_timestamp(frame(0).T, 0.0)
    vb._fault_point = kill_self
    if zero_copy:
        vb.begin_write()[...] = frame(1)
        vb.commit_write(1.0)
    else:  # reserve, copy and publish in one section
        vb.write_image_and_timestamp(frame(1).T, 1.0)


@pytest.mark.parametrize("zero_copy", [True, False], ids=["commit_write", "write_image"])
@pytest.mark.parametrize("method", METHODS)
def test_video_commit_killed_midway_is_rolled_back(method, zero_copy):
    ctx = multiprocessing.get_context(method)
    locks = make_locks(context=ctx)
    with VideoBuffer(
        create=True, locks=locks, n_stacks=2, width=W, height=H, n_images=N, bits=16,
        namespace=ns("c"),
    ) as vb:  # fmt: skip
        p = ctx.Process(target=commit_and_die, args=(locks, ns("c"), zero_copy))
        p.start()
        p.join(60)
        assert p.exitcode == -signal.SIGKILL
        assert vb.get_unread_stack_count() == 0  # a marked change: takes the lock, undoing it
        assert vb.repairs == 1 and vb.frames_written == 1
        # a new producer takes back the slot the dead one had reserved
        prod = ctx.Process(target=video_producer, args=(locks, ns("c"), 1, 3))
        prod.start()
        prod.join(60)
        assert prod.exitcode == 0
        for first in (0, 2):
            claim = vb.claim_stack()
            assert claim.frame_numbers.tolist() == [first, first + 1]
            for k in range(N):
                np.testing.assert_array_equal(claim.stack[:, :, k], frame(first + k).T)
            vb.release_stack(claim)
            del claim


# --- a process that is not a child of the run ----------------------------------------------
HOLDER = textwrap.dedent(
    """
    import sys
    from buffers import MatrixBuffer
    mb = MatrixBuffer(create=False, locks=None, name="m", namespace=sys.argv[1])
    with mb.lock:
        print("held", flush=True)
        sys.stdin.readline()
        mb.write([[1.0, 1.0]])
    mb.close()
    """
)


def try_lock(locks, namespace, out):
    with MatrixBuffer(create=False, locks=locks, name="m", namespace=namespace) as mb:
        got = mb.lock.acquire(blocking=False)
        if got:
            mb.lock.release()
        out.put(got)


@pytest.mark.parametrize("method", METHODS)
def test_unrelated_process_excludes_the_run(method):
    ctx = multiprocessing.get_context(method)
    locks, out = make_locks("m", context=ctx), ctx.Queue()
    with MatrixBuffer(create=True, locks=locks, name="m", shape=(4, 2), namespace=ns("u")) as mb:
        viewer = subprocess.Popen(
            [sys.executable, "-c", HOLDER, ns("u")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert viewer.stdout.readline() == "held\n"
            # the run's processes cannot take the lock while the viewer holds it ...
            t = ctx.Process(target=try_lock, args=(locks, ns("u"), out))
            t.start()
            assert out.get(timeout=60) is False
            t.join(60)
            assert not mb.lock.acquire(blocking=False)
            # ... a writer blocks until the viewer is done, then goes on
            w = ctx.Process(target=matrix_writer, args=(locks, ns("u"), 2.0))
            w.start()
            viewer.stdin.write("\n")
            viewer.stdin.flush()
            assert viewer.wait(60) == 0
            w.join(60)
            assert w.exitcode == 0
        finally:
            viewer.kill()
            viewer.wait()
            viewer.stdout.close()
            viewer.stdin.close()
        np.testing.assert_array_equal(mb.read(), [[1.0, 1.0], [2.0, 2.0]])
    out.close()
    out.join_thread()


TRYER = textwrap.dedent(
    """
    import sys
    from buffers import MatrixBuffer
    mb = MatrixBuffer(create=False, locks=None, name="m", namespace=sys.argv[1])
    print(mb.lock.acquire(blocking=False), flush=True)
    mb.close()
    """
)


def test_the_run_excludes_an_unrelated_process():
    with MatrixBuffer(create=True, name="m", shape=(2, 2), namespace=ns("v")) as mb:
        with mb.lock:
            held = subprocess.run(
                [sys.executable, "-c", TRYER, ns("v")], capture_output=True, text=True, check=True
            )
        free = subprocess.run(
            [sys.executable, "-c", TRYER, ns("v")], capture_output=True, text=True, check=True
        )
    assert (held.stdout, free.stdout) == ("False\n", "True\n")


# --- within one process, and across fork ---------------------------------------------------
def test_two_attachments_in_one_process_exclude_each_other():
    with MatrixBuffer(create=True, name="m", shape=(2, 2), namespace=ns("t")) as a:
        b = MatrixBuffer(create=False, name="m", namespace=ns("t"))
        got = []
        with a.lock:
            th = threading.Thread(target=lambda: got.append(b.lock.acquire(blocking=False)))
            th.start()
            th.join()
            with b.lock:  # the same thread may hold both (reentrant per process)
                b.write([[1, 1]])
        assert got == [False]
        b.close()


def child_try(mb, out):
    out.put(mb.lock.acquire(blocking=False))


def test_forked_child_does_not_share_its_parents_lock():
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    with MatrixBuffer(create=True, name="m", shape=(2, 2), namespace=ns("f")) as mb:
        with mb.lock:  # held at fork time: the child inherits the descriptor, not the lock
            p = ctx.Process(target=child_try, args=(mb, out))
            p.start()
            assert out.get(timeout=60) is False
            p.join(60)
        p = ctx.Process(target=child_try, args=(mb, out))
        p.start()
        assert out.get(timeout=60) is True
        p.join(60)
    out.close()
    out.join_thread()
