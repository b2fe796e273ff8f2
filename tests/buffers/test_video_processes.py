"""VideoBuffer across real processes, under fork and spawn: producer, parallel consumers, deaths."""

import multiprocessing
import os
import signal
import threading

import numpy as np
import pytest

from buffers import VideoBuffer, make_locks

W, H, N, S = 32, 24, 4, 3
N_FRAMES = 40 * N
METHODS = ["fork", "spawn"]


def frame(i: int) -> np.ndarray:
    """Row-major (height, width) frame: pixel k holds i + k (mod 2**16)."""
    return ((np.arange(H * W, dtype=np.int64).reshape(H, W) + i) % 65536).astype(np.uint16)


def producer(locks, namespace, n_frames):
    with VideoBuffer(create=False, locks=locks, namespace=namespace) as vb:
        for i in range(n_frames):
            if i % 2:
                vb.write_image_and_timestamp(frame(i).T, i / 1000, timeout=None)
            else:  # the zero-copy driver path
                vb.begin_write(timeout=None)[...] = frame(i)
                vb.commit_write(i / 1000)


def consumer(locks, namespace, n_frames, results):
    got, bad = [], 0
    with VideoBuffer(create=False, locks=locks, namespace=namespace) as vb:
        while True:
            with locks["done"]:
                finished = locks["done_count"].value >= n_frames
            if finished:
                break
            claim = vb.claim_stack(timeout=0.05)
            if claim is None:
                continue
            for k, fn in enumerate(claim.frame_numbers.tolist()):
                ok = np.array_equal(claim.stack[:, :, k], frame(fn).T)
                bad += (not ok) or claim.timestamps[k] != fn / 1000
            got.append(claim.frame_numbers.tolist())
            with locks["done"]:
                locks["done_count"].value += N
            vb.release_stack(claim)
            del claim
    results.put((os.getpid(), got, bad))


def run_to_end(consumers, producer, results) -> list:
    """Start the consumers and the producer; one result from each consumer; all exit with 0."""
    for p in [*consumers, producer]:
        p.start()
    outcomes = [results.get(timeout=120) for _ in consumers]
    for p in [*consumers, producer]:
        p.join(timeout=60)
        assert p.exitcode == 0
    results.close()
    results.join_thread()
    return outcomes


@pytest.mark.parametrize("method", METHODS)
def test_producer_and_parallel_consumers(method):
    ctx = multiprocessing.get_context(method)
    locks = make_locks(context=ctx)
    locks["done"] = ctx.Lock()
    locks["done_count"] = ctx.Value("q", 0, lock=False)
    results = ctx.Queue()
    ns = f"mp{method}{os.getpid()}"
    with VideoBuffer(
        create=True, locks=locks, n_stacks=S, width=W, height=H, n_images=N, bits=16, namespace=ns
    ):
        consumers = [
            ctx.Process(target=consumer, args=(locks, ns, N_FRAMES, results)) for _ in range(3)
        ]
        prod = ctx.Process(target=producer, args=(locks, ns, N_FRAMES))
        outcomes = run_to_end(consumers, prod, results)
    seen = []
    for _pid, stacks, bad in outcomes:
        assert bad == 0
        firsts = [s[0] for s in stacks]
        assert firsts == sorted(firsts)  # each consumer gets stacks in order
        for s in stacks:
            assert s == list(range(s[0], s[0] + N))
        seen += [fn for s in stacks for fn in s]
    assert sorted(seen) == list(range(N_FRAMES))  # nothing lost, nothing twice


def blocked_claimer(locks, namespace, out):
    with VideoBuffer(create=False, locks=locks, namespace=namespace) as vb:
        claim = vb.claim_stack(timeout=None)  # blocks until the parent writes a stack
        out.put(claim.frame_numbers.tolist())
        vb.release_stack(claim)
        del claim


@pytest.mark.parametrize("method", METHODS)
def test_consumer_blocks_until_a_stack_is_ready(method):
    ctx = multiprocessing.get_context(method)
    locks = make_locks(context=ctx)
    out = ctx.Queue()
    ns = f"blk{method}{os.getpid()}"
    with VideoBuffer(
        create=True, locks=locks, n_stacks=S, width=W, height=H, n_images=N, bits=16, namespace=ns
    ) as vb:
        p = ctx.Process(target=blocked_claimer, args=(locks, ns, out))
        p.start()
        for i in range(N):
            vb.write_image_and_timestamp(frame(i).T, 0.0)
        assert out.get(timeout=60) == list(range(N))
        p.join(timeout=60)
        assert p.exitcode == 0
    out.close()
    out.join_thread()


def claim_and_hang(locks, namespace, claimed, group=None):
    vb = VideoBuffer(create=False, locks=locks, namespace=namespace)
    vb.claim_stack(timeout=None, group=group)
    claimed.set()
    signal.pause()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("requeue", [True, False])
def test_killed_consumer_claim_is_recovered(method, requeue):
    ctx = multiprocessing.get_context(method)
    locks = make_locks(context=ctx)
    claimed = ctx.Event()
    ns = f"kill{method}{os.getpid()}"
    with VideoBuffer(
        create=True, locks=locks, n_stacks=2, width=W, height=H, n_images=N, bits=16, namespace=ns
    ) as vb:
        for i in range(2 * N):
            vb.write_image_and_timestamp(frame(i).T, float(i))
        p = ctx.Process(target=claim_and_hang, args=(locks, ns, claimed))
        p.start()
        assert claimed.wait(60)
        assert vb.list_claims() == [(0, p.pid, 0)]
        assert vb.reclaim_dead_claims() == []  # still alive: left alone
        os.kill(p.pid, signal.SIGKILL)
        p.join(timeout=60)
        assert vb.reclaim_dead_claims(requeue=requeue) == [0]
        assert vb.list_claims() == []
        if requeue:  # handed out again, before newer stacks, frames intact
            again = vb.claim_stack()
            assert again.frame_numbers.tolist() == list(range(N))
            np.testing.assert_array_equal(again.stack[:, :, 1], frame(1).T)
            vb.release_stack(again)
            del again
        else:  # dropped: its slots are free for the producer
            vb.read_stack_no_return()
        for i in range(N):
            vb.write_image_and_timestamp(frame(i).T, 0.0)


def hold_lock(locks, namespace, held, done):
    with VideoBuffer(create=False, locks=locks, namespace=namespace) as vb, vb.lock:
        held.set()
        done.wait(120)


@pytest.mark.timeout(60)  # taking the lock would wait for `done`, which never comes: fail
@pytest.mark.parametrize("method", METHODS)
def test_status_queries_answer_while_another_process_holds_the_lock(method):
    ctx = multiprocessing.get_context(method)
    held, done = ctx.Event(), ctx.Event()
    ns = f"st{method}{os.getpid()}"
    with VideoBuffer(
        create=True, n_stacks=S, width=W, height=H, n_images=N, bits=16, namespace=ns
    ) as vb:
        for i in range(N + 1):
            vb.write_image_and_timestamp(frame(i).T, 0.0)
        p = ctx.Process(target=hold_lock, args=({}, ns, held, done))
        p.start()
        try:
            assert held.wait(60)
            assert vb.check_read_stack()
            assert vb.get_unread_stack_count() == 1
            assert vb.get_level() == (N + 1) / (S * N)
        finally:
            done.set()
            p.join(timeout=60)
        assert p.exitcode == 0


# --- writers that take turns: the lease passes between live processes and threads ----------
TAGGED = 20000  # frame(tag * TAGGED + i): which writer, which of its frames


def tagged_writer(locks, namespace, tag, n_frames):
    with VideoBuffer(create=False, locks=locks, namespace=namespace) as vb:
        for i in range(n_frames):
            v = tag * TAGGED + i
            vb.write_image_and_timestamp(frame(v).T, float(v), timeout=None)


def collect(vb, n_frames) -> tuple[list[int], int]:
    """Claim ``n_frames`` frames; their tags in order, and how many frames' pixels did not
    match their timestamp."""
    got, bad = [], 0
    while len(got) < n_frames:
        claim = vb.claim_stack(timeout=60)
        assert claim is not None
        for k, ts in enumerate(claim.timestamps.tolist()):
            bad += not np.array_equal(claim.stack[:, :, k], frame(int(ts)).T)
            got.append(int(ts))
        vb.release_stack(claim)
        del claim
    return got, bad


def check_turns(got, counts):
    """Each writer's frames (``counts``: tag -> frames), all of them, once, in its order."""
    assert len(got) == sum(counts.values())
    for tag, n_frames in counts.items():
        assert [v - tag * TAGGED for v in got if v // TAGGED == tag] == list(range(n_frames))


@pytest.mark.parametrize("method", METHODS)
def test_two_live_producers_take_turns(method):
    ctx = multiprocessing.get_context(method)
    locks = make_locks(context=ctx)
    ns = f"turn{method}{os.getpid()}"
    n = 500 * N
    with VideoBuffer(
        create=True, locks=locks, n_stacks=S, width=W, height=H, n_images=N, bits=16, namespace=ns
    ) as vb:
        tagged_writer(locks, ns, 0, N)  # this process holds the lease first
        writers = [ctx.Process(target=tagged_writer, args=(locks, ns, t, n)) for t in (1, 2)]
        for p in writers:
            p.start()
        got, bad = collect(vb, N + 2 * n)
        for p in writers:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert vb.claim_stack(timeout=0) is None and vb.frames_written == N + 2 * n
    assert bad == 0
    check_turns(got, {0: N, 1: n, 2: n})


def test_threads_of_one_process_write_in_turn():
    n, ns = 30 * N, f"thr{os.getpid()}"
    with VideoBuffer(
        create=True, n_stacks=S, width=W, height=H, n_images=N, bits=16, namespace=ns
    ) as vb:
        threads = [threading.Thread(target=tagged_writer, args=(None, ns, t, n)) for t in (1, 2)]
        for t in threads:
            t.start()
        got, bad = collect(vb, 2 * n)
        for t in threads:
            t.join(timeout=60)
    assert bad == 0
    check_turns(got, {1: n, 2: n})


def reserve_and_wait(locks, namespace, reserved, go):
    with VideoBuffer(create=False, locks=locks, namespace=namespace) as vb:
        vb.begin_write()[...] = frame(7)
        reserved.set()
        go.wait(60)
        vb.commit_write(7.0)


@pytest.mark.parametrize("method", METHODS)
def test_a_live_reservation_is_not_taken(method):
    ctx = multiprocessing.get_context(method)
    locks = make_locks(context=ctx)
    reserved, go = ctx.Event(), ctx.Event()
    ns = f"rsv{method}{os.getpid()}"
    with VideoBuffer(
        create=True, locks=locks, n_stacks=S, width=W, height=H, n_images=N, bits=16, namespace=ns
    ) as vb:
        p = ctx.Process(target=reserve_and_wait, args=(locks, ns, reserved, go))
        p.start()
        assert reserved.wait(60)
        with pytest.raises(RuntimeError, match="in progress"):
            vb.write_image_and_timestamp(frame(1).T, 1.0)
        go.set()
        p.join(60)
        assert p.exitcode == 0
        vb.write_image_and_timestamp(frame(8).T, 8.0)  # the lease is free to take now
        assert [vb.read_image()[1] for _ in range(2)] == [7.0, 8.0] and vb.repairs == 0
