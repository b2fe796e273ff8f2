"""VideoBuffer consumer groups: every group gets every stack, and a stack's slots go back to the
producer only once every group has released it (issue 17). In one process, a model check, and
across real processes under fork and spawn (trackers + a recorder; a consumer SIGKILLed)."""

import multiprocessing
import os
import signal

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from buffers import BufferOverflow, SegmentError, VideoBuffer, make_locks

from .test_faults import kill_self
from .test_video_processes import METHODS, H, W, claim_and_hang, frame, producer, run_to_end

N, S = 3, 3  # images per stack, stacks
GROUPS = ("trackers", "recorder")


def new(namespace: str | None = None, groups=GROUPS, locks=None, n_stacks=S) -> VideoBuffer:
    return VideoBuffer(
        create=True, locks=make_locks(groups=groups) if locks is None else locks,
        n_stacks=n_stacks, width=W, height=H, n_images=N, bits=16, groups=groups,
        namespace=namespace,
    )  # fmt: skip


def fill(vb: VideoBuffer, first: int, n: int) -> None:
    for i in range(first, first + n):
        vb.write_image_and_timestamp(frame(i).T, float(i))


def test_groups_are_stored_checked_and_required():
    with new() as vb:
        assert vb.groups == GROUPS
        with VideoBuffer(create=False) as other:
            assert other.groups == GROUPS
        with pytest.raises(SegmentError):
            VideoBuffer(create=False, groups=("trackers",))
        fill(vb, 0, N)
        with pytest.raises(ValueError):
            vb.claim_stack()  # which group?
        with pytest.raises(ValueError):
            vb.claim_stack(group="viewer")
        for single_consumer in (vb.peak_stack, vb.read_stack_no_return, vb.read_image):
            with pytest.raises(RuntimeError):
                single_consumer()
        with pytest.raises(RuntimeError):
            vb.wait_for_stack(timeout=0)
    for bad in ((), ("a", "a"), ("",), ("x" * 33,), "trackers", (1,)):
        with pytest.raises(ValueError):
            new(groups=bad, locks={})
    with VideoBuffer(create=True, n_stacks=1, width=2, height=2, n_images=1, bits=8) as plain:
        assert plain.groups == ()
        plain.write_timestamp(0.0)
        with pytest.raises(ValueError):
            plain.claim_stack(group="trackers")
        assert plain.claim_stack().group is None


def test_every_group_gets_every_stack_released_in_any_order():
    with new() as vb:
        fill(vb, 0, N * S)
        assert vb.get_unread_stack_count("trackers") == vb.get_unread_stack_count("recorder") == S
        t = [vb.claim_stack(group="trackers") for _ in range(S)]
        assert vb.claim_stack(group="trackers") is None
        assert vb.check_read_stack("recorder") and not vb.check_read_stack("trackers")
        assert vb.get_unread_stack_count() == S  # the group furthest behind
        r0 = vb.claim_stack(group="recorder")
        assert [c.frame_numbers[0] for c in t] == [0, N, 2 * N] and r0.frame_numbers[0] == 0
        assert r0.group == "recorder" and t[0].group == "trackers"
        np.testing.assert_array_equal(r0.stack[:, :, 1], frame(1).T)
        assert sorted(vb.list_claims("trackers")) == [(i, os.getpid(), i * N) for i in range(S)]
        for c in (t[2], t[0], t[1]):  # the trackers are done, in another order
            vb.release_stack(c)
        with pytest.raises(BufferOverflow):  # stack 0: the recorder still holds it
            vb.write_image_and_timestamp(frame(99).T, 99.0)
        vb.release_stack(r0)
        fill(vb, N * S, N)  # stack 0 rewritten once both groups released it
        with pytest.raises(BufferOverflow):  # stack 1: the recorder has not read it yet
            vb.write_image_and_timestamp(frame(99).T, 99.0)
        with pytest.raises(ValueError):
            vb.release_stack(r0)
        r1 = vb.claim_stack(group="recorder")
        assert r1.frame_numbers.tolist() == list(range(N, 2 * N))
        vb.release_stack(r1)
        fill(vb, N * S + N, N)
        new_t = vb.claim_stack(group="trackers")
        assert new_t.frame_numbers.tolist() == list(range(N * S, N * S + N))
        vb.release_stack(new_t)
        del t, r0, r1, new_t


class GroupsModel(RuleBasedStateMachine):
    """Random writes, claims and releases of two groups against a model of each group."""

    def __init__(self):
        super().__init__()
        self.vb = new()
        self.unread = {g: [] for g in GROUPS}  # frame numbers not yet claimed, oldest first
        self.claims = {g: [] for g in GROUPS}
        self.next = 0

    def teardown(self):
        self.claims.clear()
        self.vb.close()

    def can_write(self) -> bool:
        w = self.next % (N * S) // N
        return all(
            len(self.unread[g]) + N * len(self.claims[g]) < N * S
            and all(c.index != w for c in self.claims[g])
            for g in GROUPS
        )

    @rule()
    def write(self):
        if not self.can_write():
            with pytest.raises(BufferOverflow):
                self.vb.write_image_and_timestamp(frame(self.next).T, float(self.next))
            return
        self.vb.write_image_and_timestamp(frame(self.next).T, float(self.next))
        for g in GROUPS:
            self.unread[g].append(self.next)
        self.next += 1

    @rule(g=st.sampled_from(GROUPS))
    def claim(self, g):
        c = self.vb.claim_stack(group=g)
        if len(self.unread[g]) < N:
            assert c is None
            return
        want = self.unread[g][:N]
        del self.unread[g][:N]
        assert c.frame_numbers.tolist() == want and c.group == g
        np.testing.assert_array_equal(c.stack[:, :, N - 1], frame(want[-1]).T)
        self.claims[g].append(c)

    @precondition(lambda self: any(self.claims.values()))
    @rule(g=st.sampled_from(GROUPS), k=st.integers(0, S - 1))
    def release(self, g, k):
        held = self.claims[g] or self.claims[GROUPS[GROUPS.index(g) - 1]]
        c = held.pop(k % len(held))
        for j, fn in enumerate(c.frame_numbers.tolist()):  # not overwritten while held
            np.testing.assert_array_equal(c.stack[:, :, j], frame(fn).T)
        self.vb.release_stack(c)

    @invariant()
    def levels(self):
        for g in GROUPS:
            assert self.vb.get_unread_stack_count(g) == len(self.unread[g]) // N
        assert self.vb.get_level() == max(len(u) for u in self.unread.values()) / (N * S)


GroupsModel.TestCase.settings = settings(max_examples=60, stateful_step_count=50, deadline=None)
test_groups_model = GroupsModel.TestCase


# --- across processes ---------------------------------------------------------------------------
N_FRAMES = 30 * N


def consumer(locks, namespace, group, n_stacks, taken, results):
    """Claim stacks of ``group`` until the group has taken ``n_stacks`` in all."""
    got, bad = [], 0
    with VideoBuffer(create=False, locks=locks, namespace=namespace) as vb:
        while True:
            claim = vb.claim_stack(timeout=0.05, group=group)
            if claim is None:
                with taken.get_lock():
                    if taken.value >= n_stacks:
                        break
                continue
            for k, fn in enumerate(claim.frame_numbers.tolist()):
                ok = np.array_equal(claim.stack[:, :, k], frame(fn).T)
                bad += (not ok) or claim.timestamps[k] != fn / 1000
            got.append(claim.frame_numbers.tolist())
            with taken.get_lock():
                taken.value += 1
            vb.release_stack(claim)
            del claim
    results.put((group, got, bad))


@pytest.mark.parametrize("method", METHODS)
def test_trackers_and_a_recorder_each_see_every_frame(method):
    ctx = multiprocessing.get_context(method)
    locks = make_locks(context=ctx, groups=GROUPS)
    results = ctx.Queue()
    ns = f"grp{method}{os.getpid()}"
    n_stacks = N_FRAMES // N
    taken = {g: ctx.Value("q", 0) for g in GROUPS}
    with new(ns, locks=locks):
        roles = ["trackers", "trackers", "recorder"]
        consumers = [
            ctx.Process(target=consumer, args=(locks, ns, g, n_stacks, taken[g], results))
            for g in roles
        ]
        prod = ctx.Process(target=producer, args=(locks, ns, N_FRAMES))
        outcomes = run_to_end(consumers, prod, results)
    for group in GROUPS:
        stacks = [s for g, got, bad in outcomes if g == group for s in got]
        assert all(bad == 0 for g, _, bad in outcomes)
        for s in stacks:
            assert s == list(range(s[0], s[0] + N))
        # no stack skipped by a group, none twice
        assert sorted(fn for s in stacks for fn in s) == list(range(N_FRAMES))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("requeue", [True, False])
def test_a_killed_recorders_claim_is_recovered(method, requeue):
    ctx = multiprocessing.get_context(method)
    locks = make_locks(context=ctx, groups=GROUPS)
    claimed = ctx.Event()
    ns = f"gkill{method}{os.getpid()}"
    with new(ns, locks=locks, n_stacks=2) as vb:
        fill(vb, 0, 2 * N)
        for _ in range(2):  # the trackers are done with both stacks
            vb.release_stack(vb.claim_stack(group="trackers"))
        p = ctx.Process(target=claim_and_hang, args=(locks, ns, claimed, "recorder"))
        p.start()
        assert claimed.wait(60)
        assert vb.list_claims() == [(0, p.pid, 0)]
        assert vb.reclaim_dead_claims() == []  # still alive: left alone
        with pytest.raises(BufferOverflow):  # held by the recorder: never overwritten
            vb.write_image_and_timestamp(frame(9).T, 9.0)
        os.kill(p.pid, signal.SIGKILL)
        p.join(timeout=60)
        assert vb.reclaim_dead_claims(requeue=requeue) == [0]
        assert vb.list_claims() == []
        assert vb.claim_stack(group="trackers") is None  # recovered for the recorder only
        if requeue:  # handed to the recorder again, before its newer stack, frames intact
            again = vb.claim_stack(group="recorder")
            assert again.frame_numbers.tolist() == list(range(N))
            np.testing.assert_array_equal(again.stack[:, :, 1], frame(1).T)
            with pytest.raises(BufferOverflow):
                vb.write_image_and_timestamp(frame(9).T, 9.0)
            vb.release_stack(again)
            del again
        fill(vb, 2 * N, N)  # stack 0's slots are the producer's again
        last = vb.claim_stack(group="recorder")
        assert last.frame_numbers.tolist() == list(range(N, 2 * N))
        vb.release_stack(last)
        del last


def commit_and_die(locks, namespace):
    vb = VideoBuffer(create=False, locks=locks, namespace=namespace)
    vb.write_image_and_timestamp(frame(0).T, 0.0)
    vb._fault_point = kill_self  # half-way through publishing frame 1
    vb.write_image_and_timestamp(frame(1).T, 1.0)


@pytest.mark.parametrize("method", METHODS)
def test_a_producer_killed_mid_commit_is_rolled_back_for_every_group(method):
    ctx = multiprocessing.get_context(method)
    locks = make_locks(context=ctx, groups=GROUPS)
    ns = f"gdie{method}{os.getpid()}"
    with new(ns, locks=locks) as vb:
        p = ctx.Process(target=commit_and_die, args=(locks, ns))
        p.start()
        p.join(60)
        assert p.exitcode == -signal.SIGKILL
        assert [vb.get_level(g) for g in GROUPS] == [1 / (N * S)] * 2  # frame 0 only
        assert vb.repairs == 1 and vb.frames_written == 1
        fill(vb, 1, N - 1)
        for g in GROUPS:
            c = vb.claim_stack(group=g)
            assert c.frame_numbers.tolist() == list(range(N))
            np.testing.assert_array_equal(c.stack[:, :, 1], frame(1).T)
            vb.release_stack(c)
            del c
