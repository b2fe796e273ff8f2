"""Frames/s and CPU per frame through the genicam driver against a bare harvesters fetch loop.

Both loops run in this process on the same producer and settings, alternating, so the ratio is
measured in one run. The bare loop is harvesters' documented pattern: ``with ia.fetch() as
buffer`` and a copy of the component's data into a preallocated array. The driver loops read
into a preallocated array and, when the buffers package is importable, into VideoBuffer slots.

A simulated producer paces frames at its frame rate (viky: at most 200 fps), so frames/s is
camera-bound for all loops; CPU µs per frame (process time) is what tells their costs apart.

Usage: python benchmarks/bench_genicam.py [--cti PATH] [--frames 400] [--size 800] [--repeats 2]
"""

import argparse
import time
from pathlib import Path

import numpy as np

from hal.genicam import Camera, default_cti_files


def bare_loop(cti: Path, nodes: dict, n: int) -> tuple[float, float]:
    from harvesters.core import Harvester

    h = Harvester()
    h.add_file(str(cti))
    h.update()
    ia = h.create(0)
    try:
        nm = ia.remote_device.node_map
        for name in ("PixelFormat", "Width", "Height", "AcquisitionFrameRate"):
            if name in nodes and nm.has_node(name):
                getattr(nm, name).value = nodes[name]
        ia.num_buffers = 16
        w, h_ = nm.Width.value, nm.Height.value
        out = np.empty((h_, w), np.uint8)
        ia.start()
        with ia.fetch(timeout=5) as b:  # first frame outside the clock, as for the driver
            np.copyto(out, b.payload.components[0].data.reshape(h_, w))
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            with ia.fetch(timeout=5) as b:
                np.copyto(out, b.payload.components[0].data.reshape(h_, w))
        t1, c1 = time.perf_counter(), time.process_time()
        ia.stop()
    finally:
        ia.destroy()
        h.reset()
    return n / (t1 - t0), (c1 - c0) / n * 1e6


def driver_loop(cti: Path, nodes: dict, n: int, into_video: bool) -> tuple[float, float]:
    cam = Camera({"cti_files": [cti], "pixel_size_nm": 100.0, "nodes": nodes, "num_buffers": 16})
    with cam:
        out = np.empty((cam.height, cam.width), cam.dtype)
        vb = None
        if into_video:
            from buffers import VideoBuffer, make_locks

            vb = VideoBuffer(
                create=True,
                locks=make_locks(),
                n_stacks=8,
                width=cam.width,
                height=cam.height,
                n_images=10,
                bits=cam.dtype.itemsize * 8,
                namespace=f"bench{time.monotonic_ns()}",
            )
        try:
            cam.start()
            cam.read_frame(out, timeout=5)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n):
                if vb is None:
                    cam.read_frame(out, timeout=5)
                else:
                    slot = vb.begin_write(5.0)
                    info = cam.read_frame(slot, timeout=5)
                    vb.commit_write(info.timestamp)
                    if vb.check_read_stack():
                        vb.read_stack_no_return()  # stands in for a tracker freeing the stack
            t1, c1 = time.perf_counter(), time.process_time()
            cam.stop()
        finally:
            if vb is not None:
                vb.close()
    return n / (t1 - t0), (c1 - c0) / n * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cti", type=Path, default=None, help="producer (default: as the driver's)")
    p.add_argument("--frames", type=int, default=400)
    p.add_argument("--size", type=int, default=800, help="Width = Height")
    p.add_argument("--rate", type=float, default=200.0, help="AcquisitionFrameRate, if settable")
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    cti = a.cti or default_cti_files()[0]
    nodes = {"PixelFormat": "Mono8", "Width": a.size, "Height": a.size}
    nodes_rate = {**nodes, "AcquisitionFrameRate": a.rate}
    print(f"producer {cti.name}, {a.size}x{a.size} Mono8, {a.frames} frames x {a.repeats}")
    loops = {
        "bare harvesters fetch+copy": lambda nd: bare_loop(cti, nd, a.frames),
        "driver read_frame -> array": lambda nd: driver_loop(cti, nd, a.frames, False),
        "driver read_frame -> VideoBuffer": lambda nd: driver_loop(cti, nd, a.frames, True),
    }
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in loops}
    for _ in range(a.repeats):
        for name, loop in loops.items():
            try:
                try:
                    results[name].append(loop(nodes_rate))
                except Exception as exc:
                    if "AcquisitionFrameRate" not in str(exc):
                        raise
                    results[name].append(loop(nodes))  # a producer without that node
            except Exception as exc:  # e.g. buffers not importable here
                print(f"  {name}: skipped ({type(exc).__name__}: {exc})")
                loops = {k: v for k, v in loops.items() if k != name}
                break
    base_fps = np.median([r[0] for r in results["bare harvesters fetch+copy"]])
    base_cpu = np.median([r[1] for r in results["bare harvesters fetch+copy"]])
    for name, rs in results.items():
        if not rs:
            continue
        fps, cpu = np.median([r[0] for r in rs]), np.median([r[1] for r in rs])
        print(
            f"  {name:34s} {fps:8.1f} fps  ratio {fps / base_fps:5.3f}   "
            f"CPU {cpu:7.1f} µs/frame  ratio {cpu / base_cpu:5.3f}"
        )


if __name__ == "__main__":
    main()
