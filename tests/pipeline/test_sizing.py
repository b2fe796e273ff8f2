"""The video ring's sizing: stacks short enough for the latency, a ring deep enough for stalls."""

import psutil
import pytest

from magacq._platform import autogroup_nice, raised_priority
from magacq.config import RunConfig
from magacq.pipeline.sizing import MIN_STACKS, video_ring

FRAME = 688 * 688 * 2  # the 100-bead benchmark's frame, bytes
GIB = 2**30


def _cfg(rate: float, **buffers: object) -> RunConfig:
    camera = {"driver": "sim", "settings": {"frame_rate": rate}}
    return RunConfig.model_validate({"camera": camera, "buffers": buffers})


@pytest.mark.parametrize(
    ("rate", "per_stack", "n_stacks"),
    [(1000, 2, 250), (200, 1, 100), (10_000, 20, 250), (30, 1, 15)],
)
def test_a_stack_fills_within_stack_ms_and_the_ring_holds_ring_s(rate, per_stack, n_stacks):
    """Defaults: a stack holds 2 ms of frames (at least one), the ring 0.5 s of frames."""
    ring = video_ring(_cfg(rate), FRAME, 256 * GIB)
    assert (ring.n_images, ring.n_stacks) == (per_stack, n_stacks)
    assert ring.n_images == 1 or ring.n_images / rate <= 0.002


def test_the_ring_takes_at_most_a_quarter_of_the_room_and_at_least_min_stacks():
    ring = video_ring(_cfg(1000, ring_s=1.0), FRAME, 1 * GIB)  # 1 s would be 0.95 GB
    assert ring.n_stacks * ring.n_images * FRAME <= GIB / 4
    assert ring.n_stacks > MIN_STACKS
    assert video_ring(_cfg(1000, ring_s=1.0), FRAME, 10 * FRAME).n_stacks == MIN_STACKS
    huge = video_ring(_cfg(1e9), FRAME, 1 * GIB)  # the stacks too are kept within the room
    assert huge.n_stacks == MIN_STACKS
    assert huge.n_stacks * huge.n_images * FRAME <= GIB / 4


def test_sizes_given_in_the_config_are_kept():
    ring = video_ring(_cfg(1000, n_stacks=8, images_per_stack=5), FRAME, 64 * GIB)
    assert (ring.n_stacks, ring.n_images) == (8, 5)
    ring = video_ring(_cfg(500, ring_s=0.5, stack_ms=10), FRAME, 64 * GIB)
    assert (ring.n_stacks, ring.n_images) == (50, 5)


def test_raised_priority_is_asked_for_and_the_autogroup_given_back():
    """Raised where the OS allows it (root here, or CAP_SYS_NICE), else refused, unchanged;
    the process and the session's autogroup (Linux, where it has one) have their nice back
    after the block."""
    me = psutil.Process()
    before = autogroup_nice()  # None where the session has no autogroup (not Linux, a cgroup)
    nice = me.nice()
    with raised_priority(nice - 1) as got:
        assert got in (nice - 1, None)
        assert me.nice() == (nice if got is None else nice - 1)
        if before is not None and got is not None:
            assert autogroup_nice() == got
    assert me.nice() == nice
    assert autogroup_nice() == before
