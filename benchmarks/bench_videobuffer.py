"""Producer process -> consumer process through VideoBuffer, against memcpy and magscope.

Moves 512x512 uint16 frames in stacks and prints frames/s, GB/s and ratios measured in the same
run: to a plain numpy copy of the same frames, and to magscope's VideoBuffer. Three consumer
patterns:

- "polling": the seed's documented usage, written as the reference's own processes do it, on
  both buffers alike: ``locks={"VideoBuffer": multiprocessing.Lock()}``, the consumer loops on
  ``check_read_stack()``, then ``peak_stack()`` and ``read_stack_no_return()``; the producer
  retries ``write_image_and_timestamp`` at once on BufferOverflow. In both documented frame
  forms, each against magscope's figure for the same form: "polling" writes the ``(width,
  height)`` array ``frame.T`` (magscope cannot take an array: its slot is a byte memoryview,
  so it gets the same frame's bytes, zero-copy); "polling bytes" writes row-major bytes to both
  (prebuilt ``bytes`` objects, as magscope's cameras pass ``frame.tobytes()``: ``BYTES_POOL`` of
  them, stamped ``i % BYTES_POOL``, since bytes cannot be stamped in place);
- "blocking": the consumer sleeps in ``wait_for_stack`` and the producer in a blocking write
  (the semaphores of ``make_locks``);
- "claim": ``claim_stack`` / ``release_stack``, the producer filling the slot itself
  (``begin_write``, np.copyto, ``commit_write``) as a camera driver does;
- "groups": "claim" on a buffer with consumer groups ``("trackers", "recorder")``, one
  consumer process in each: every stack is read by both before the producer may reuse it.

"raw ring, 2 processes" is the floor of the two-process patterns on this machine: the same frames
through a plain shared-memory ring of the same size, published with two counters and no
protocol at all (no lease, no claims, no recovery). The patterns print their ratio to it too.

The documented write copies with non-temporal stores on large frames (``buffers._stream``);
the line "streamed copy" times that copy alone, in one process, for scale. Then paces the
producer at 1 kHz (one-frame stacks) and prints p50/p99 hand-off latency (commit -> consumer
has the frame). Every frame's number (stamped in its pixels) is checked, a stack at a time.

"first write" times the first two ``write_image_and_timestamp`` of a producer that has just
attached in a fresh process (spawned: nothing imported or compiled before), ours and magscope's:
a camera's first frame must not wait for a compiler (ours copies plainly until numba's
streaming kernel is loaded, in a thread).

The default 20000 frames (about a second a variant) measure the steady state: in short runs
magscope's first pass over its ring pays a page fault per 4 KiB, which flatters our ratio (ours
maps its segment populated).

Usage: ``python benchmarks/bench_videobuffer.py [--frames 20000] [--trials 5] [--polling]``
(about 20 s on a quiet 2-core machine, a minute at load 8; ``--polling``: the documented polling
pattern alone, in both frame forms).
"""

import argparse
import contextlib
import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from multiprocessing import shared_memory

import numpy as np
import psutil

from buffers import BufferOverflow, VideoBuffer, make_locks
from buffers._platform import yield_cpu
from buffers._stream import stream_copy

W = H = 512
N_IMAGES = 10
N_STACKS = 8
NS = f"bench{os.getpid()}"
GROUPS = ("trackers", "recorder")
BYTES_POOL = 11  # prebuilt bytes frames; prime to the stack and ring: a lost stack shows


def bytes_pool() -> list[bytes]:
    """``BYTES_POOL`` row-major frames as ``bytes``, frame ``k`` stamped ``k``."""
    src = sources(BYTES_POOL)
    for k, f in enumerate(src):
        stamp(f, k)
    return [f.tobytes() for f in src]


def sources(k: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 65535, size=(k, H, W), dtype=np.uint16)


def stamp(img: np.ndarray, i: int) -> None:
    """Write frame number ``i`` into the first and last pixels of a row-major frame."""
    img[0, 0], img[0, 1], img[-1, -1] = i & 0xFFFF, i >> 16, (i * 7) & 0xFFFF


def bad_frames(stack: np.ndarray, first: int, numbers=None, modulo: int = 0) -> int:
    """How many frames of a (width, height, n) stack do not carry numbers first, first + 1, ...
    (each ``% modulo`` when given; nor, when given, have them as their ``numbers``). Per stack,
    not per frame: the consumer's own cost stays small next to the buffers' (the same code
    checks both buffers)."""
    want = np.arange(first, first + stack.shape[2])
    if numbers is not None:
        numbers = numbers == want
    if modulo:
        want %= modulo
    ok = (
        (stack[0, 0, :] == want & 0xFFFF)
        & (stack[1, 0, :] == want >> 16)
        & (stack[-1, -1, :] == (want * 7) & 0xFFFF)
    )
    if numbers is not None:
        ok &= numbers
    return int(np.count_nonzero(~ok))


# --- producers ---------------------------------------------------------------------------
def attach(kind, locks):
    """The consumer's or producer's own attachment to the run's buffer."""
    if kind.startswith("magscope"):
        from magscope.datatypes import VideoBuffer as MagVB

        return MagVB(create=False, locks=locks)
    return VideoBuffer(create=False, locks=locks, namespace=NS)


def overflow(kind):
    if kind.startswith("magscope"):
        from magscope.datatypes import BufferOverflow as MagOverflow

        return MagOverflow
    return BufferOverflow


def produce(kind, locks, n_frames, start, pace_s):
    src = sources()
    vb = attach(kind, locks)
    full = overflow(kind)
    pool = bytes_pool() if kind.endswith("bytes") else None
    if not kind.startswith("magscope"):  # load the streaming kernel (numba: ~0.5 s, untimed)
        stream_copy(np.zeros(16, np.uint8), np.zeros(16, np.uint8))
    start.wait()
    t_next = time.perf_counter()
    for i in range(n_frames):
        if pace_s:
            t_next += pace_s
            delay = t_next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        f = src[i % len(src)]
        stamp(f, i)
        if kind in ("claim", "groups"):  # zero-copy: the "camera" fills the slot itself
            slot = vb.begin_write(timeout=None)
            np.copyto(slot, f)
            vb.commit_write(time.perf_counter())
        elif kind == "blocking":
            vb.write_image_and_timestamp(f.T, time.perf_counter(), timeout=None)
        else:  # the documented write: no blocking, retry at once on overflow
            if pool is not None:
                image = pool[i % BYTES_POOL]  # row-major bytes
            elif kind == "magscope":
                image = memoryview(f).cast("B")  # it takes no array: the frame's bytes
            else:
                image = f.T  # the (width, height) array
            while True:
                try:
                    vb.write_image_and_timestamp(image, time.perf_counter())
                    break
                except full:
                    pass
    if not kind.startswith("magscope"):
        vb.close()


# --- consumers ---------------------------------------------------------------------------
def consume(kind, locks, n_frames, n_images, out, group=None):
    vb = attach(kind, locks)
    seen, bad, lat = 0, 0, []
    t0 = None
    claims = kind in ("claim", "groups")
    modulo = BYTES_POOL if kind.endswith("bytes") else 0
    while seen < n_frames:
        if claims:
            claim = vb.claim_stack(timeout=None, group=group)
            now = time.perf_counter()
            stack, ts, fns = claim.stack, claim.timestamps, claim.frame_numbers
        else:
            if kind == "blocking":
                vb.wait_for_stack(timeout=None)
            elif not vb.check_read_stack():  # polling, as the reference's processes do
                continue
            stack, ts = vb.peak_stack()
            now = time.perf_counter()
            fns = None
        t0 = ts[0] if t0 is None else t0
        lat.append(now - ts[-1])
        bad += bad_frames(stack, seen, fns, modulo)
        seen += n_images
        del stack
        if claims:
            vb.release_stack(claim)
            del claim
        else:
            vb.read_stack_no_return()
    elapsed = time.perf_counter() - t0
    if not kind.startswith("magscope"):
        vb.close()
    out.put((elapsed, bad, seen, lat))


def run(kind, n_frames, *, n_images=N_IMAGES, pace_s=0.0):
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start = ctx.Event()
    groups = GROUPS if kind == "groups" else None
    if kind.startswith("magscope"):
        from magscope.datatypes import VideoBuffer as MagVB

        locks = {"VideoBuffer": ctx.Lock()}
        vb = MagVB(create=True, locks=locks, n_stacks=N_STACKS, width=W, height=H,
                   n_images=n_images, bits=16)  # fmt: skip
    else:
        # the documented locks for the documented pattern; the semaphores for blocking waits
        if kind.startswith("polling"):
            locks = {"VideoBuffer": ctx.Lock()}
        else:
            locks = make_locks(context=ctx, groups=groups or ())
        vb = VideoBuffer(create=True, locks=locks, n_stacks=N_STACKS, width=W, height=H,
                         n_images=n_images, bits=16, groups=groups, namespace=NS)  # fmt: skip
    try:
        consumers = [
            ctx.Process(target=consume, args=(kind, locks, n_frames, n_images, out, group))
            for group in groups or (None,)
        ]
        prod = ctx.Process(target=produce, args=(kind, locks, n_frames, start, pace_s))
        for p in [*consumers, prod]:
            p.start()
        start.set()
        results = [out.get(timeout=120) for _ in consumers]  # each consumer sees every frame
        for p in [*consumers, prod]:
            p.join()
        elapsed = max(r[0] for r in results)
        bad, seen = sum(r[1] for r in results), min(r[2] for r in results)
        lat = [t for r in results for t in r[3]]
    finally:
        if kind.startswith("magscope"):
            for shm in (vb._shm, vb._ts_shm, vb._idx_shm, vb._shm_info):
                shm.close()
                try:
                    shm.unlink()
                except FileNotFoundError:  # magscope's names are global: not ours alone
                    raise SystemExit(
                        f"another process removed magscope's {shm.name!r} during the run "
                        "(a magscope run or test elsewhere on this host): figures invalid"
                    ) from None
        else:
            vb.close()
    return n_frames / elapsed, bad, n_frames - seen, np.array(lat)


def _first_writes(kind: str, locks, namespace: str, out) -> None:
    """In a fresh process: attach as the producer; the durations of its first two writes."""
    if kind == "magscope":
        from magscope.datatypes import VideoBuffer as MagVB

        vb = MagVB(create=False, locks=locks)
    else:
        vb = VideoBuffer(create=False, locks=locks, namespace=namespace)
    src = sources(2)
    took = []
    for i in range(2):
        t = time.perf_counter()
        vb.write_image_and_timestamp(memoryview(src[i]).cast("B"), float(i))
        took.append(time.perf_counter() - t)
    out.put(took)
    if kind != "magscope":
        vb.close()


def first_write(kind: str) -> list[float]:
    """Seconds of the first two writes of a freshly attached producer (a spawned process)."""
    ctx = mp.get_context("spawn")
    out, locks = ctx.Queue(), {"VideoBuffer": ctx.Lock()}
    if kind == "magscope":
        from magscope.datatypes import VideoBuffer as MagVB

        vb = MagVB(create=True, locks=locks, n_stacks=N_STACKS, width=W, height=H,
                   n_images=N_IMAGES, bits=16)  # fmt: skip
    else:
        vb = VideoBuffer(create=True, n_stacks=N_STACKS, width=W, height=H,
                         n_images=N_IMAGES, bits=16, namespace=NS)  # fmt: skip
    try:
        p = ctx.Process(target=_first_writes, args=(kind, locks, NS, out))
        p.start()
        took = out.get(timeout=120)
        p.join()
    finally:
        if kind == "magscope":
            for shm in (vb._shm, vb._ts_shm, vb._idx_shm, vb._shm_info):
                shm.close()
                shm.unlink()
        else:
            vb.close()
    return took


_RAW_WORDS = 4096  # the bare ring's header: frames written, frames read; then the frames


@contextlib.contextmanager
def _raw_ring(name: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(words, ring)`` views of the bare ring ``name``, detached afterwards."""
    shm = shared_memory.SharedMemory(name=name)
    words = np.ndarray(2, np.int64, shm.buf)
    ring = np.ndarray((N_STACKS * N_IMAGES, H, W), np.uint16, shm.buf, offset=_RAW_WORDS)
    try:
        yield words, ring
    finally:
        del words, ring
        shm.close()


def _raw_producer(name: str, n_frames: int, start) -> None:
    src = sources()
    with _raw_ring(name) as (words, ring):
        start.wait()
        for i in range(n_frames):
            while i - words[1] >= len(ring):  # full: wait for the consumer
                yield_cpu()
            f = src[i % len(src)]
            stamp(f, i)
            np.copyto(ring[i % len(ring)], f)
            time.perf_counter()  # the timestamp the buffers' producers take
            words[0] = i + 1  # publish (x86 keeps the stores in order)


def _raw_consumer(name: str, n_frames: int, out) -> None:
    seen, bad, t0 = 0, 0, None
    with _raw_ring(name) as (words, ring):
        while seen < n_frames:
            if words[0] - seen < N_IMAGES:
                yield_cpu()
                continue
            t0 = time.perf_counter() if t0 is None else t0
            r = seen % len(ring)
            bad += bad_frames(ring[r : r + N_IMAGES].transpose(2, 1, 0), seen)
            seen += N_IMAGES
            words[1] = seen
    out.put((time.perf_counter() - t0, bad))


def raw_two_process_fps(n_frames: int) -> tuple[float, int]:
    """The same frames from one process to another through a plain shared-memory ring of the
    same size, with no protocol beyond two counters: what two processes can do here at all."""
    ctx = mp.get_context("fork")
    shm = shared_memory.SharedMemory(create=True, size=_RAW_WORDS + N_STACKS * N_IMAGES * H * W * 2)
    try:
        np.ndarray(2, np.int64, shm.buf)[:] = 0
        out, start = ctx.Queue(), ctx.Event()
        procs = [ctx.Process(target=_raw_consumer, args=(shm.name, n_frames, out)),
                 ctx.Process(target=_raw_producer, args=(shm.name, n_frames, start))]  # fmt: skip
        for p in procs:
            p.start()
        start.set()
        elapsed, bad = out.get(timeout=120)
        for p in procs:
            p.join()
    finally:
        shm.close()
        shm.unlink()
    return n_frames / elapsed, bad


def streamed_copy(dst: np.ndarray, src: np.ndarray) -> None:
    stream_copy(dst.reshape(-1).view(np.uint8), src.reshape(-1).view(np.uint8))


def memcpy_fps(n_frames: int, copy=np.copyto) -> float:
    src = sources()
    ring = np.empty((N_STACKS * N_IMAGES, H, W), np.uint16)
    ring.fill(1)  # fault the pages in first: the strictest baseline
    copy(ring[0], src[0])  # and load the copy's code
    t = time.perf_counter()
    for i in range(n_frames):
        copy(ring[i % len(ring)], src[i % len(src)])
    return n_frames / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--trials", type=int, default=5, help="rounds of every variant")
    parser.add_argument("--latency-frames", type=int, default=2000)
    parser.add_argument(
        "--polling", action="store_true", help="the documented polling pattern alone, both forms"
    )
    args = parser.parse_args()
    n = args.frames - args.frames % N_IMAGES
    frame_gb = W * H * 2 / 1e9
    print(f"{W}x{H} uint16, {N_IMAGES} frames/stack, {N_STACKS} stacks, {n} frames; "
          f"load {psutil.getloadavg()[0]:.2f}, {os.cpu_count()} cpus")  # fmt: skip
    base = memcpy_fps(n)
    streamed = memcpy_fps(n, streamed_copy)  # write_image_and_timestamp's copy, for scale
    print(f"{'streamed copy (1 process)':34s} {streamed:9.0f} frames/s "
          f"{streamed * frame_gb:6.2f} GB/s  x{streamed / base:.2f} memcpy")  # fmt: skip
    firsts = {} if args.polling else {k: first_write(k) for k in ("magscope", "VideoBuffer")}
    if firsts:
        print("first write of a freshly attached producer (first, second): " + ", ".join(
            f"{kind} {a * 1e3:.2f} ms, {b * 1e3:.2f} ms" for kind, (a, b) in firsts.items()
        ))  # fmt: skip
    # rounds of every variant in turn: each ratio is to the baseline of its own round, taken
    # moments apart, so that a shared machine's changing load shifts both alike
    kinds = ("magscope", "polling", "magscope bytes", "polling bytes")
    if not args.polling:
        kinds += ("blocking", "claim", "groups")
    fps = {k: [] for k in ("memcpy", "raw", *kinds)}
    bad_lost = dict.fromkeys(("raw", *kinds), (0, 0))
    for _ in range(args.trials):
        fps["memcpy"].append(memcpy_fps(n))
        got, bad = raw_two_process_fps(n)
        fps["raw"].append(got)
        bad_lost["raw"] = (bad_lost["raw"][0] + bad, 0)
        for kind in kinds:
            got, bad, lost, _ = run(kind, n)
            fps[kind].append(got)
            bad_lost[kind] = (bad_lost[kind][0] + bad, bad_lost[kind][1] + lost)
    base, raw = np.array(fps["memcpy"]), np.array(fps["raw"])
    print(f"{args.trials} rounds: median [min-max] of each round's ratios")
    for kind in ("memcpy", "raw", *kinds):
        got = np.array(fps[kind])
        label = {"memcpy": "memcpy (numpy, 1 process)", "magscope": "magscope VideoBuffer",
                 "magscope bytes": "magscope VideoBuffer bytes",
                 "raw": "raw ring, 2 processes"}  # fmt: skip
        line = f"{label.get(kind, 'VideoBuffer ' + kind):34s} {np.median(got):9.0f} frames/s "
        line += f"{np.median(got) * frame_gb:6.2f} GB/s"
        refs = {"memcpy": (), "raw": ("memcpy",), "magscope": ("memcpy", "raw"),
                "magscope bytes": ("memcpy", "raw")}  # fmt: skip
        mag = np.array(fps["magscope bytes" if kind.endswith("bytes") else "magscope"])
        for name, ref in (("memcpy", base), ("magscope", mag), ("raw", raw)):
            if name in refs.get(kind, ("memcpy", "magscope", "raw")):
                r = got / ref
                line += f"  x{np.median(r):.2f} [{r.min():.2f}-{r.max():.2f}] {name}"
        if kind != "memcpy":
            line += "  bad={} lost={}".format(*bad_lost[kind])
        print(line)
    for kind in () if args.polling else ("claim", "blocking"):
        _, bad, lost, lat = run(kind, args.latency_frames, n_images=1, pace_s=0.001)
        lat = lat[len(lat) // 10 :] * 1e6  # drop warm-up
        print(f"hand-off at 1 kHz, {kind:10s}: p50 {np.percentile(lat, 50):7.1f} us  "
              f"p99 {np.percentile(lat, 99):7.1f} us  max {lat.max():7.1f} us  "
              f"bad={bad} lost={lost}")  # fmt: skip


if __name__ == "__main__":
    main()
