"""Closing a run file whose SWMR writer was SIGKILLed (what `h5clear` does, then attributes)."""

import multiprocessing as mp
import os
import signal
import struct

import h5py
import numpy as np
import pytest

from magacq.runfile import close_abandoned
from magacq.runfile._recover import clear_write_flags, lookup3


def test_lookup3_is_hdf5s_superblock_checksum(tmp_path) -> None:
    for n in range(3):
        path = tmp_path / f"{n}.h5"
        with h5py.File(path, "w", libver="latest") as f:
            f.create_dataset("x", data=np.arange(n * 7))
        head = path.read_bytes()[:48]
        assert lookup3(head[:44]) == struct.unpack("<I", head[44:48])[0]
    assert lookup3(b"") == 0xDEADBEEF  # lookup3's value for nothing
    assert not clear_write_flags(path)  # closed properly: no flag to clear


def _write_then_hang(path: str, ready) -> None:
    f = h5py.File(path, "w", libver="latest")
    f.attrs["state"] = "running"
    d = f.create_dataset("x", shape=(0,), maxshape=(None,), dtype="f8", chunks=(64,))
    f.swmr_mode = True
    for i in range(20):
        d.resize((len(d) + 10,))
        d[-10:] = i
        f.flush()
    ready.set()
    signal.pause()


def test_a_killed_writers_file_is_closed_as_failed(tmp_path) -> None:
    path = tmp_path / "run.h5"
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    writer = ctx.Process(target=_write_then_hang, args=(str(path), ready))
    writer.start()
    assert ready.wait(30)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r+")
    assert close_abandoned(path, {"state": "failed", "error": "the writer process died"})
    with h5py.File(path, "r") as f:
        assert f.attrs["state"] == "failed" and f.attrs["error"] == "the writer process died"
        assert f["x"].shape == (200,) and f["x"][-1] == 19  # everything it flushed
    assert not close_abandoned(path, {"state": "complete"})  # closed now: left as it is
