"""The viewer's reading of the machine's idle CPU (what makes it refresh less on a busy machine)."""

import os

from magacq.view._cpu import IdleCpu


def test_idle_cores_lie_between_none_and_all():
    idle = IdleCpu()
    sum(i * i for i in range(300_000))  # some time passes, with this process busy
    cores = idle.cores()
    assert cores is not None
    assert 0 <= cores <= 1.1 * os.cpu_count()  # the kernel counts in ticks: a little slack
