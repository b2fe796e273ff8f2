"""Fixtures every test gets: a private shared-memory namespace and registry, and a leak check.

A test fails if it leaves a segment (its registry record, or a new entry in the platform's shared
memory where it can be listed: /dev/shm) or a live child process behind.
"""

import os
import tempfile
import time
from multiprocessing import resource_tracker

import psutil
import pytest

from buffers import REGISTRY_ENV, registry_dir, remove_segment
from buffers._platform import list_blocks, unlink_block

# Entries other programs make on their own (the GenICam reference producer keeps a log segment),
# and multiprocessing's named semaphores ("sem.mp-*"). The names of the latter say nothing of
# which process made them, so a check that unlinked "new" ones deleted the live semaphores of
# runs and tests of other sessions on this host: their resource tracker and their finalizers
# then failed to unlink them (FileNotFoundError tracebacks, "leaked semaphore" warnings).
# Those of a spawn/forkserver context are unlinked by multiprocessing's resource tracker; those
# of a fork context (magacq run) are unlinked as soon as they are made.
_FOREIGN = ("GenICam", "sem.mp-")


def _shm_entries() -> set[str]:
    """What this session may have made: its registry's records (every magacq segment this
    session made has one until it is unlinked), and the shared memory's other entries (magacq
    segments of other sessions are theirs, whatever their names)."""
    entries = {p.name for p in registry_dir().iterdir()}
    entries |= {
        name
        for name, _age in list_blocks("") or ()  # None where it cannot be listed (not Linux)
        if not name.startswith(_FOREIGN) and not name.startswith("magacq.")
    }
    return entries


#: The modules that take longest (minutes of real runs each), longest first: they start first,
#: so that the suite's two workers (``pytest -n 2``, a module at a time each) end together.
_LONGEST = (
    "offline/test_recipes.py",
    "offline/test_retrack.py",
    "faults/test_hangs.py",
    "faults/test_config_faults.py",
    "protocol/test_run.py",
    "faults/test_process_faults.py",
    "pipeline/test_recorder.py",
    "protocol/test_locks_run.py",
    "calibrate/test_calibrate.py",
    "pipeline/test_magnets.py",
    "mmcore/test_validate.py",
    "offline/test_analyze.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first (:data:`_LONGEST`), the others in their order."""

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::")[0].removeprefix("tests/")
        return _LONGEST.index(module) if module in _LONGEST else len(_LONGEST)

    items.sort(key=rank)


@pytest.fixture(scope="session", autouse=True)
def _test_namespace():
    """Run the whole session in its own namespace and registry so parallel runs never
    collide (a segment's name hashes its registry's path too)."""
    os.environ["MAGACQ_NAMESPACE"] = f"test{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="magacq-registry-") as where:
        os.environ[REGISTRY_ENV] = where
        yield


@pytest.fixture(autouse=True)
def no_leaks():
    """Fail the test if it leaves shared-memory segments or child processes behind."""
    before = _shm_entries()
    yield
    me = psutil.Process()
    deadline = time.monotonic() + 5.0
    while True:
        children = [
            c
            for c in me.children(recursive=True)
            if c.is_running()
            and c.status() != psutil.STATUS_ZOMBIE
            # multiprocessing's spawn start method keeps one tracker process for the session
            and c.pid != getattr(resource_tracker._resource_tracker, "_pid", None)
        ]
        leaked = sorted(_shm_entries() - before)
        if not (children or leaked) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for child in children:
        child.kill()
    for name in leaked:
        if (registry_dir() / name).exists():
            remove_segment(name.rsplit(".", 1)[0])  # the segment too
        else:
            unlink_block(name)
    assert not leaked, f"test leaked shared memory: {leaked}"
    assert not children, f"test left processes running: {[c.cmdline() for c in children]}"
