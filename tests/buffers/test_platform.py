"""buffers._platform: the portable ways are the ones taken where Linux's are missing or
``MAGACQ_PORTABLE=1`` forces them, they work with real processes and shared memory, and a
process on the portable ways shares buffers with one on Linux's fast ones."""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import platformdirs
import pytest

from buffers import (
    PORTABLE_ENV,
    MatrixBuffer,
    VideoBuffer,
    _ordering,
    list_segments,
    registry_dir,
    remove_stale_segments,
    segment_name,
)
from buffers._platform import (
    _shm,
    after_fork_in_child,
    owner_alive,
    process_token,
    yield_cpu,
)

LINUX = sys.platform.startswith("linux")


def ns(tag: str) -> str:
    return f"{tag}{os.getpid()}"


def block_kind(buf) -> str:
    return "portable" if isinstance(buf._seg._block, _shm.PortableBlock) else "fast"


@pytest.mark.skipif(not LINUX, reason="Linux's fast path")
def test_linux_takes_its_fast_path_unless_forced(monkeypatch):
    monkeypatch.delenv(PORTABLE_ENV, raising=False)
    with MatrixBuffer(create=True, name="m", shape=(4, 2), namespace=ns("fast")) as buf:
        assert block_kind(buf) == "fast"
    monkeypatch.setenv(PORTABLE_ENV, "1")
    with MatrixBuffer(create=True, name="m", shape=(4, 2), namespace=ns("forced")) as buf:
        assert block_kind(buf) == "portable"


def test_without_pread_the_portable_segments_are_taken(monkeypatch):
    """What macOS lacks of Linux's path (here: ``os.pread``) sends every call the portable way:
    create, attach, inspect, list, unlink."""
    monkeypatch.delenv(PORTABLE_ENV, raising=False)
    monkeypatch.delattr(os, "pread", raising=False)
    namespace = ns("nopread")
    with MatrixBuffer(create=True, name="m", shape=(4, 2), namespace=namespace) as buf:
        assert block_kind(buf) == "portable"
        with MatrixBuffer(create=False, name="m", namespace=namespace) as peer:
            assert block_kind(peer) == "portable"
            buf.write(np.ones((3, 2)))
            assert peer.read().shape == (3, 2)
        [info] = list_segments(namespace)
        assert (info.namespace, info.buffer, info.kind) == (namespace, "m", "MatrixBuffer")
        assert info.owner_alive and info.owner_pid == os.getpid()
    assert not list_segments(namespace)


def test_without_sched_yield_or_fork_hooks_buffers_still_work(monkeypatch):
    """Windows has neither ``os.sched_yield`` nor ``os.register_at_fork``."""
    monkeypatch.delattr(os, "sched_yield")
    monkeypatch.delattr(os, "register_at_fork")
    yield_cpu()
    after_fork_in_child(lambda: None)
    with VideoBuffer(
        create=True, n_stacks=2, width=4, height=3, n_images=2, bits=8, namespace=ns("win")
    ) as vb:
        assert vb.claim_stack(timeout=0.01) is None  # looked (yielding), then slept
        for i in range(4):
            vb.write_image_and_timestamp(np.full((4, 3), i, np.uint8), float(i))
        claim = vb.claim_stack(timeout=1)
        assert claim is not None and claim.stack[0, 0, 1] == 1
        vb.release_stack(claim)


_ATTACH = """
import sys
import numpy as np
import platformdirs
from buffers import MatrixBuffer
from buffers._platform import _shm
with MatrixBuffer(create=False, name="shared", namespace=sys.argv[1]) as buf:
    print(_shm.fast(), buf.read().sum())
    buf.write(np.full((1, 2), 7.0))
"""


@pytest.mark.parametrize("creator_portable", [True, False])
def test_portable_and_fast_processes_share_a_buffer(monkeypatch, creator_portable):
    """A buffer made on one way is found, read, written and locked by a process on the other
    (a `magacq view` started without the flag of its run)."""
    namespace = ns(f"mixed{int(creator_portable)}")
    monkeypatch.setenv(PORTABLE_ENV, "1" if creator_portable else "0")
    with MatrixBuffer(create=True, name="shared", shape=(4, 2), namespace=namespace) as buf:
        buf.write(np.ones((2, 2)))
        env = dict(os.environ, **{PORTABLE_ENV: "0" if creator_portable else "1"})
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_ATTACH), namespace],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        fast, total = done.stdout.split()
        assert fast == str(creator_portable and LINUX) and float(total) == 4.0
        assert buf.read().tolist() == [[7.0, 7.0]]


def test_segment_names_fit_macos(monkeypatch, tmp_path):
    """macOS refuses shared-memory names of 31 characters or more (with the leading '/')."""
    name = segment_name("x" * 100, "y" * 100)
    assert len("/" + name) <= 30
    assert name != segment_name("x" * 100, "y" * 99)
    assert name == segment_name("x" * 100, "y" * 100)
    monkeypatch.setenv("MAGACQ_RUNTIME_DIR", str(tmp_path))
    assert segment_name("x" * 100, "y" * 100) != name  # another registry, another name


def _sleep_forever() -> None:
    time.sleep(600)


def test_owner_liveness_from_pid_and_start_token():
    me = os.getpid()
    assert owner_alive(me, process_token(me))
    assert not owner_alive(me, process_token(me) + 1)  # a reused pid: another start
    assert not owner_alive(0, 0) and process_token(-1) == -1
    proc = multiprocessing.get_context("spawn").Process(target=_sleep_forever)
    proc.start()
    token = process_token(proc.pid)
    assert owner_alive(proc.pid, token)
    proc.kill()
    proc.join(30)
    assert not owner_alive(proc.pid, token)


def _create_and_die(namespace: str) -> None:
    buf = MatrixBuffer(create=True, name="orphan", shape=(4, 2), namespace=namespace)  # noqa: F841
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("portable", ["0", "1"])
def test_stale_segment_found_through_the_registry(monkeypatch, portable):
    """A creator SIGKILLed: its segment is listed (from its record) as stale and swept."""
    monkeypatch.setenv(PORTABLE_ENV, portable)
    namespace = ns(f"stale{portable}")
    proc = multiprocessing.get_context("spawn").Process(target=_create_and_die, args=(namespace,))
    proc.start()
    proc.join(60)
    [info] = list_segments(namespace)
    assert info.buffer == "orphan" and not info.owner_alive
    assert remove_stale_segments(namespace) == [info.name]
    assert not list_segments(namespace)
    assert not list(registry_dir().glob(info.name + ".*"))


def test_fences():
    """On x86-64 release and acquire are program order and the full fence a locked
    instruction; elsewhere (and forced) all three are a fence instruction, which runs here."""
    release, acquire, full = _ordering._fences(False)
    assert release is acquire is full
    full()
    release, acquire, full = _ordering._fences(True)
    release(), acquire(), full()


def test_default_registry_is_the_users_runtime_directory(monkeypatch):
    """Without $MAGACQ_RUNTIME_DIR: platformdirs' runtime directory (its warning, where
    XDG_RUNTIME_DIR is unset, kept in: warnings are errors here)."""
    monkeypatch.delenv("MAGACQ_RUNTIME_DIR")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = platformdirs.user_runtime_path("magacq")
    assert registry_dir() == expected and expected.is_dir()


_ATTACH_MANY = """
import multiprocessing as mp, sys
from buffers._platform import _shm

def attach(name):
    for _ in range(300):
        _shm.attach_block(name).close()

if __name__ == "__main__":
    block = _shm.create_block(sys.argv[1], 4096)
    children = [mp.get_context("spawn").Process(target=attach, args=(sys.argv[1],))
                for _ in range(4)]
    for p in children:
        p.start()
    for p in children:
        p.join()
    block.close()
    _shm.unlink_block(sys.argv[1])
    print(*(p.exitcode for p in children))
"""


def test_portable_blocks_attached_by_many_spawned_processes_at_once(tmp_path):
    """Spawned processes share their parent's resource tracker; portable blocks are not
    registered with it (Python < 3.13 registered every attach, and unregistering from several
    processes at once raced: a KeyError traceback from the tracker)."""
    script = tmp_path / "attach_many.py"
    script.write_text(textwrap.dedent(_ATTACH_MANY))
    done = subprocess.run(
        [sys.executable, str(script), f"magacq-race-{os.getpid()}"],
        env=dict(os.environ, **{PORTABLE_ENV: "1"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"] * 4
    assert "Traceback" not in done.stderr and "KeyError" not in done.stderr, done.stderr
