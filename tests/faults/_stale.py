"""Segments as crashed runs leave them, made and swept with a private registry and /dev/shm;
orphans too (segments whose registry was deleted, as a test harness deletes its temporary one).

A sweep of every namespace (`magacq clean`, each `magacq run`) by a program sharing the registry
(tests of this session) would take a stale segment made there, so these scenarios have a
registry of their own, and a /dev/shm of their own (tests/faults/_isolated.py) that takes what
they leave on purpose (a segment too young to sweep). What is left is asked of the shared memory
by name (``buffers.inspect_segment``), as on every platform; the script prints it as JSON.
"""

import json
import shlex
import sys
from pathlib import Path

from tests.faults._isolated import on_tmpfs
from tests.pipeline import _runner as r

_SCENARIO = """
import json, os, shutil, signal, subprocess, sys, tempfile, time
from buffers import MatrixBuffer, inspect_segment, list_segments, registry_dir, segment_name

def crashed(namespace, age_s):
    code = ("import os, signal\\nfrom buffers import MatrixBuffer\\n"
            "b = MatrixBuffer(create=True, name='crashed', shape=(1000, 4), "
            f"namespace={namespace!r})\\nos.kill(os.getpid(), signal.SIGKILL)\\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    name = segment_name("crashed", namespace)
    when = time.time() - age_s  # a segment's age is its registry record's
    os.utime(registry_dir() / f"{name}.seg", (when, when))
    return name

held = []

def orphan(namespace, age_s, crash=True):
    # a segment made with a registry since deleted, last written age_s ago; its creator
    # crashed, or (crash=False) is this process (the buffer kept in held). Its name.
    registry = os.environ["MAGACQ_RUNTIME_DIR"]
    os.environ["MAGACQ_RUNTIME_DIR"] = lost = tempfile.mkdtemp()
    try:
        if crash:
            name = crashed(namespace, age_s)
        else:
            held.append(MatrixBuffer(create=True, name="crashed", shape=(10, 2),
                                     namespace=namespace))
            name = segment_name("crashed", namespace)
    finally:
        os.environ["MAGACQ_RUNTIME_DIR"] = registry
        shutil.rmtree(lost)
    when = time.time() - age_s
    os.utime(f"/dev/shm/{name}", (when, when))
    return name

old = [crashed(f"old{k}", 60) for k in range(2)]  # left by runs that crashed a minute ago
young = crashed("young", 0)  # its creator only just died: another program may reclaim it
live = MatrixBuffer(create=True, name="live", shape=(10, 2), namespace="alive")
orphans = [orphan("orphan", 60), orphan("orphanyoung", 0), orphan("orphanlive", 60, False)]
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
made = [*old, young, segment_name("live", "alive"), *orphans]
print(json.dumps({"old": old, "young": young, "live": made[len(old) + 1], "orphans": orphans,
                  "left": [n for n in made if inspect_segment(n) is not None],
                  "listed": [i.name for i in list_segments()], "returncode": done.returncode,
                  "stdout": done.stdout, "stderr": done.stderr}))
live.close()
held[0].close()
"""


def sweep_scenario(tmp: Path, *args: str) -> dict:
    """With a private registry and /dev/shm: stale segments (two a minute old, one just made),
    a live one, then ``magacq ARGS``; what was left and what magacq said."""
    registry = tmp / "registry"
    command = shlex.join([sys.executable, "-c", _SCENARIO, *r.MAGACQ, *args])
    command = f"MAGACQ_RUNTIME_DIR={shlex.quote(str(registry))} {command}"
    done = on_tmpfs(Path("/dev/shm"), "512m", command, cwd=tmp)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])
