"""MatrixBuffer rows per second, against a plain numpy copy and magscope's MatrixBuffer.

Two measurements, each printed with its ratios to baselines measured in the same run:

1. one process: ``write(batch)`` then ``read()``, for several batch sizes (the writer/tracker
   hand-off cost per call); baseline: copying the same batch into and out of a numpy array.
2. a writer process -> a reader process: rows/s through the buffer, every row checked
   (nothing lost, nothing repeated, none torn).

Usage: ``python benchmarks/bench_matrixbuffer.py [--rows 200000]``
"""

import argparse
import multiprocessing as mp
import os
import time
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from buffers import BufferOverflow, MatrixBuffer

COLS = 8  # a positions row: time, frame, bead, x, y, z, flag, written
NS = f"bench{os.getpid()}"
MAG = "benchMatrix"


def mag_unlink() -> None:
    """magscope leaves its three segments behind: remove them."""
    for suffix in ("", " Info", " Index"):
        try:
            shm = SharedMemory(MAG + suffix)
        except FileNotFoundError:
            continue
        shm.close()
        shm.unlink()


def make(kind: str, locks: dict, rows: int):
    if kind == "magscope":
        from magscope.datatypes import MatrixBuffer as MagMB

        return MagMB(create=True, locks={MAG: locks["m"]}, name=MAG, shape=(rows, COLS))
    return MatrixBuffer(create=True, locks={"m": locks["m"]}, name="m", shape=(rows, COLS),
                        namespace=NS)  # fmt: skip


def cycle_rate(kind: str, batch: int, seconds: float = 0.5) -> float:
    """Rows/s of write-then-read cycles of ``batch`` rows in one process."""
    data = np.random.default_rng(0).random((batch, COLS))
    if kind == "numpy":
        store = np.empty((4 * batch, COLS))
        write = lambda: store.__setitem__(slice(0, batch), data)  # noqa: E731
        read = lambda: store[:batch].copy()  # noqa: E731
        close = lambda: None  # noqa: E731
    else:
        buf = make(kind, {"m": mp.Lock()}, 4 * batch)
        write, read = (lambda: buf.write(data)), buf.read
        close = buf.close if kind == "magacq" else mag_unlink
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            write()
            out = read()
        n += 100
    elapsed = time.perf_counter() - t0
    assert np.array_equal(out, data)
    close()
    return n * batch / elapsed


def writer(kind: str, lock, total: int, batch: int, start) -> None:
    if kind == "magscope":
        from magscope.datatypes import MatrixBuffer as MagMB

        buf = MagMB(create=False, locks={MAG: lock}, name=MAG)
    else:
        buf = MatrixBuffer(create=False, locks={"m": lock}, name="m", namespace=NS)
    base = np.zeros((batch, COLS))
    start.wait()
    k = 0
    while k < total:
        block = base + np.arange(k, k + batch, dtype=np.float64)[:, None]
        try:
            buf.write(block)
        except BufferOverflow:
            time.sleep(0.0002)
            continue
        k += batch
    if kind == "magacq":
        buf.close()


def pipe_rate(kind: str, total: int, batch: int) -> float:
    """Rows/s from a writer process to this (reader) process; every row checked."""
    ctx = mp.get_context("fork")
    lock, start = ctx.Lock(), ctx.Event()
    # magscope would silently overwrite unread rows: give it room for the whole run
    capacity = total if kind == "magscope" else 8192
    buf = make(kind, {"m": lock}, capacity)
    proc = ctx.Process(target=writer, args=(kind, lock, total, batch, start))
    proc.start()
    got = []
    t0 = time.perf_counter()
    start.set()
    n = 0
    while n < total:
        block = buf.read()
        if len(block):
            got.append(block)
            n += len(block)
        else:
            time.sleep(0.0002)
    elapsed = time.perf_counter() - t0
    proc.join()
    data = np.concatenate(got)
    ok = np.array_equal(data[:, 0], np.arange(total)) and (data == data[:, :1]).all()
    if kind == "magacq":
        buf.close()
    else:
        mag_unlink()
    if not ok:
        raise SystemExit(f"{kind}: rows lost, repeated or torn")
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    try:
        import magscope.datatypes  # noqa: F401

        kinds = ["magacq", "magscope"]
    except ImportError:
        kinds = ["magacq"]
    print(f"1. write+read cycles in one process, {COLS} float64 columns (rows/s)")
    print(f"{'batch':>6} {'numpy':>12} {'magacq':>12} {'magscope':>12} {'/numpy':>7} {'/mag':>6}")
    for batch in (1, 8, 64, 512):
        rates = {k: cycle_rate(k, batch) for k in ["numpy", *kinds]}
        ours, mag = rates["magacq"], rates.get("magscope", float("nan"))
        print(f"{batch:>6} {rates['numpy']:>12.3g} {ours:>12.3g} {mag:>12.3g} "
              f"{ours / rates['numpy']:>7.2f} {ours / mag:>6.2f}")  # fmt: skip
    print(f"2. writer process -> reader process, {args.rows} rows in batches of 64 (rows/s)")
    rates = {k: pipe_rate(k, args.rows, 64) for k in kinds}
    for k, r in rates.items():
        print(f"{k:>9}: {r:.3g} rows/s, {r * COLS * 8 / 1e6:.1f} MB/s, all rows checked")
    if "magscope" in rates:
        print(f"  magacq / magscope: {rates['magacq'] / rates['magscope']:.2f}")


if __name__ == "__main__":
    main()
