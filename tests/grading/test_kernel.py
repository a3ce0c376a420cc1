"""Kernel processes (course_lib.grading.kernel): limits, outputs, deaths, in the sandbox and without it."""

import os

import pytest

from course_lib.grading import sandbox as sandbox_module
from course_lib.grading.kernel import Kernel, Limits, OutputBudget, RunState, kernel_env

PROBE = ("import resource, numpy as np\nprint(resource.getrlimit(resource.RLIMIT_AS)[0] >> 20)\n"
         "a = np.zeros(3 << 30, dtype=np.uint8)\nprint('allocated', a.nbytes >> 30)")


def text(outcome):
    return "".join(o.get("text", "") for o in outcome.outputs)


def test_output_budget_keeps_what_fits():
    budget = OutputBudget(100)
    assert budget.admit({"text": "x" * 10}) and not budget.admit({"text": "x" * 200}) and budget.dropped > 200


@pytest.mark.slow
def test_memory_cap_is_applied_to_the_kernel(tmp_path):
    capped = Kernel(tmp_path, dict(os.environ), Limits(memory_mb=2048, file_size_mb=64), None)
    try:
        outcome = capped.execute(PROBE, 60, None)
    finally:
        capped.close()
    assert "2048\n" in text(outcome)
    assert outcome.state is RunState.ERROR and outcome.ename == "MemoryError"
    free = Kernel(tmp_path, dict(os.environ), Limits(), None)  # the same allocation is fine uncapped
    try:
        outcome = free.execute(PROBE, 60, None)
    finally:
        free.close()
    assert outcome.state is RunState.OK and "allocated 3" in text(outcome)


@pytest.mark.slow
def test_sandboxed_kernel_limits_timeouts_budget_and_death(tmp_path, needs_sandbox):
    box = sandbox_module.create(64, [])
    env = kernel_env("quick", 1, tmp_path, box)
    kernel = Kernel(tmp_path, env, Limits(2048, 16, 256, 512, 300), tmp_path / "k.log", box, box.uid_for(0))
    try:
        limits = kernel.execute("import os, resource\nprint(os.getuid(), os.getcwd(), [resource.getrlimit(r)[0] for r in "
                                "(resource.RLIMIT_AS, resource.RLIMIT_FSIZE, resource.RLIMIT_NPROC, "
                                "resource.RLIMIT_NOFILE, resource.RLIMIT_CPU)])", 60, None)
        assert limits.state is RunState.OK, limits
        uid, cwd, values = text(limits).split(" ", 2)
        assert int(uid) not in (0, os.getuid()) and cwd == "/tmp"
        assert values.strip() == str([2048 << 20, 16 << 20, 256, 512, 300])
        budget = OutputBudget(2000)
        flood = kernel.execute("for i in range(100):\n    print('x' * 100)", 60, budget)
        assert flood.state is RunState.OK and budget.dropped and "output beyond 1 KB" in text(flood)
        assert kernel.execute("import time\ntime.sleep(30)", 2, None).state is RunState.TIMEOUT
    finally:
        kernel.close()
    kernel = Kernel(tmp_path, env, Limits(2048, 16, 256, 512, 300), None, box, box.uid_for(0))
    try:
        dead = kernel.execute("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", 60, None)
        assert dead.state is RunState.DEAD and dead.evalue == "the kernel process died from SIGKILL"
    finally:
        kernel.close()
    assert not list(tmp_path.glob("kernel-*"))          # connection files and sockets are cleaned up
