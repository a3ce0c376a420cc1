"""One grading kernel: an IPython kernel process with resource limits (in the sandbox or not), whose
cells nbclient executes.

The kernel is started by jupyter_client's :class:`~jupyter_client.AsyncKernelManager` through
:class:`_Provisioner`, which launches it under the sandbox's ``bwrap`` command line when there is
one, and talks to it over ZeroMQ's ``ipc`` transport (unix sockets: in the scratch folder of the
sandbox, reached through ``/proc/<pid>/root``, so that no network is involved). Cells run through
nbclient's :class:`~nbclient.NotebookClient` (timeouts, dead-kernel detection, output collection),
with a per-notebook cap on the bytes of output kept.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from course_lib.grading.results import say

_LOG = logging.getLogger("course_lib.grading.kernel")
_LOG.addHandler(logging.NullHandler())
_LOG.propagate = False

# The kernel command: set the resource limits, switch to the sandbox's unprivileged uid when the grader
# is root, then become the ordinary IPython kernel (same process). Arguments: memory MB, file size MB,
# processes, open files, CPU seconds (0 = no limit), uid (-1 = keep), connection file.
WRAPPER = (
    "import os, resource, sys\n"
    "memory, fsize, nproc, nofile, cpu, uid = (int(a) for a in sys.argv[1:7])\n"
    "def cap(kind, value):\n"
    "    if value > 0:\n"
    "        hard = resource.getrlimit(kind)[1]\n"
    "        value = value if hard == resource.RLIM_INFINITY else min(value, hard)\n"
    "        resource.setrlimit(kind, (value, value))\n"
    "cap(resource.RLIMIT_AS, memory << 20)\n"
    "cap(resource.RLIMIT_FSIZE, fsize << 20)\n"
    "cap(resource.RLIMIT_NPROC, nproc)\n"
    "cap(resource.RLIMIT_NOFILE, nofile)\n"
    "cap(resource.RLIMIT_CPU, cpu)\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "if uid >= 0:\n"
    "    os.setgroups([])\n"
    "    os.setresgid(uid, uid, uid)\n"
    "    os.setresuid(uid, uid, uid)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'ipykernel_launcher', '-f', sys.argv[7]])\n"
)


# What an unconfined kernel (--no-sandbox) inherits from the grader's environment.
UNCONFINED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "PYTHONPATH", "CONDA_PREFIX",
                  "COURSE_DATA_DIR", "COURSE_DATASET", "COURSE_OFFLINE", "KERAS_BACKEND", "KERAS_HOME", "MPLCONFIGDIR",
                  "XDG_CACHE_HOME", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "SSL_CERT_FILE")


def kernel_env(mode: str, workers: int, workdir: Path, sandbox=None) -> dict[str, str]:
    """A grading kernel's environment: the sandbox's (or a few of the grader's variables), plus the
    run's settings (``COURSE_MODE``, inline plots, quiet TensorFlow, one share of the CPU threads)."""
    if sandbox is not None:
        env = sandbox.environment()
    else:
        env = {k: os.environ[k] for k in UNCONFINED_ENV if k in os.environ}
        env["TMPDIR"] = str(workdir)
    threads = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    env.update(COURSE_MODE=mode, MPLBACKEND="module://matplotlib_inline.backend_inline", TF_CPP_MIN_LOG_LEVEL="3",
               KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "tensorflow"), PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               TF_NUM_INTRAOP_THREADS=threads, TF_NUM_INTEROP_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


@dataclass(frozen=True)
class Limits:
    """Resource limits of one kernel process (0 = none). Memory and file size in MB."""

    memory_mb: int = 0
    file_size_mb: int = 0
    processes: int = 0
    open_files: int = 0
    cpu_seconds: int = 0


class RunState(str, Enum):
    """How one execution request ended."""

    OK = "ok"
    ERROR = "error"          # the code raised (Outcome.ename / evalue)
    TIMEOUT = "timeout"
    DEAD = "dead"            # the kernel process ended (Outcome.evalue says how)
    CANCELLED = "cancelled"  # the run is being stopped


@dataclass
class Outcome:
    """What one execution request produced."""

    state: RunState
    outputs: list = field(default_factory=list)
    ename: str = ""
    evalue: str = ""
    seconds: float = 0.0


class OutputBudget:
    """Caps the bytes of output kept for one notebook; the rest is dropped with one marker."""

    def __init__(self, limit_bytes: int):
        self.limit = limit_bytes
        self.used = 0
        self.dropped = 0

    def admit(self, output) -> bool:
        """Count ``output`` and say whether it fits."""
        size = len(json.dumps(output, default=str))
        if self.used + size <= self.limit:
            self.used += size
            return True
        self.dropped += size
        return False


@functools.cache
def _provisioner_class():
    from jupyter_client.launcher import launch_kernel
    from jupyter_client.provisioning import LocalProvisioner

    class _Provisioner(LocalProvisioner):
        """jupyter_client's local provisioner, launching the kernel under the sandbox when there is one."""

        sandbox = None
        sandbox_pid: int | None = None     # the sandbox's PID 1, as the host sees it
        sandbox_pidfd: int | None = None   # a pidfd of it (killing it ends every process inside)

        async def launch_kernel(self, cmd, **kwargs):
            if self.sandbox is None:
                self.process = launch_kernel(cmd, **self._scrub_kwargs(kwargs))
            else:
                self.process = self._launch_sandboxed(cmd, self._scrub_kwargs(kwargs))
            self.pid = self.process.pid
            try:
                self.pgid = os.getpgid(self.pid)
            except OSError:
                self.pgid = None
            return self.connection_info

        def _launch_sandboxed(self, cmd, kwargs):
            from course_lib.grading import sandbox as sandbox_module

            host_file = Path(self.parent.connection_file)
            inner = dict(self.connection_info, ip=f"{sandbox_module.SOCKETS}/kernel")
            inner["key"] = inner["key"].decode() if isinstance(inner["key"], bytes) else inner["key"]
            inside_file = host_file.with_name("sandbox-" + host_file.name)
            inside_file.write_text(json.dumps(inner), encoding="utf-8")
            os.chmod(inside_file, 0o644)   # readable by the kernel's uid, in a folder only the grader can enter
            argv = [sandbox_module.CONNECTION_FILE if part == str(host_file) else part for part in cmd]
            info_read, info_write = os.pipe()
            program = sandbox_module.seccomp_filter()
            seccomp_read = None
            if program is not None:
                seccomp_read, seccomp_write = os.pipe()
                os.write(seccomp_write, program)
                os.close(seccomp_write)
            fds = (info_write,) if seccomp_read is None else (info_write, seccomp_read)
            try:
                process = subprocess.Popen(
                    self.sandbox.command(argv, connection_file=inside_file, info_fd=info_write, seccomp_fd=seccomp_read),
                    env=kwargs.get("env"), cwd=kwargs.get("cwd"), stdin=subprocess.DEVNULL,
                    stdout=kwargs.get("stdout"), stderr=kwargs.get("stderr"), start_new_session=True, pass_fds=fds)
            finally:
                os.close(info_write)
                if seccomp_read is not None:
                    os.close(seccomp_read)
            try:
                info = _read_json(info_read, timeout=60)
            finally:
                os.close(info_read)
            if "child-pid" not in info:
                process.kill()
                process.wait()
                raise RuntimeError("the sandbox did not start (bwrap's message is in the kernel log)")
            pid = self.sandbox_pid = int(info["child-pid"])
            try:
                self.sandbox_pidfd = os.pidfd_open(pid)
            except (AttributeError, OSError):  # Linux < 5.3: killing bwrap's process group ends it too
                self.sandbox_pidfd = None
            # The kernel binds its sockets inside the sandbox; the grader reaches them through its root.
            self.connection_info = dict(self.connection_info, ip=f"/proc/{pid}/root{inner['ip']}")
            return process

    return _Provisioner


def _read_json(fd: int, timeout: float) -> dict:
    """Read one JSON object from a pipe (until it parses, EOF or ``timeout``)."""
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        try:
            return json.loads(data)
        except ValueError:
            continue
    return {}


@functools.cache
def _executor_class():
    from nbclient import NotebookClient
    from nbformat.v4 import new_output

    class _Executor(NotebookClient):
        """nbclient's cell execution, keeping at most the notebook's output budget."""

        budget: OutputBudget | None = None
        marker = None

        def keep(self, output) -> bool:  # replaced per request: outputs that bypass the budget
            return False

        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if out is None or self.keep(out) or self.budget is None or self.budget.admit(out):
                return out
            if outs and outs[-1] is out:
                outs.pop()
            if self.marker is None:
                self.marker = new_output("stream", name="stderr",
                                         text=f"[grader: output beyond {self.budget.limit // 1024} KB per notebook dropped]\n")
                outs.append(self.marker)
            return None

        def clear_output(self, outs, msg, cell_index):
            super().clear_output(outs, msg, cell_index)
            if self.marker is not None and not outs and not self.clear_before_next_output:
                outs.append(self.marker)   # the note that output was dropped survives clearing

    return _Executor


class Kernel:
    """One kernel process with resource limits, in the sandbox when one is given.

    Args:
        workdir: a private host folder for the connection files (and, without a sandbox, the
            kernel's working directory and sockets).
        env: the kernel's environment.
        limits: its resource limits.
        log_path: where its stdout/stderr go (None: discarded).
        sandbox: a :class:`~course_lib.grading.sandbox.Sandbox`, or None to run it unconfined.
        uid: with a root sandbox, the uid the kernel switches to (see ``Sandbox.uid_for``).
        startup_timeout: seconds to wait for the kernel to answer.

    Raises:
        RuntimeError: the kernel (or its sandbox) did not start.
    """

    def __init__(self, workdir: Path, env: dict, limits: Limits, log_path: Path | None, sandbox=None, uid: int = -1,
                 startup_timeout: float = 120):
        from jupyter_client import AsyncKernelManager
        from jupyter_client.kernelspec import KernelSpec
        from jupyter_core.utils import run_sync
        from nbformat.v4 import new_notebook

        self._run_sync = run_sync
        self._lock = threading.Lock()
        self.sandboxed = sandbox is not None
        workdir = Path(workdir)
        self.km = AsyncKernelManager(transport="ipc", ip=str(workdir / "kernel"),
                                     connection_file=str(workdir / f"kernel-{os.getpid()}-{threading.get_ident()}.json"),
                                     log=_LOG)
        argv = [sys.executable, "-c", WRAPPER, str(limits.memory_mb), str(limits.file_size_mb), str(limits.processes),
                str(limits.open_files), str(limits.cpu_seconds), str(uid), "{connection_file}"]
        self.km._kernel_spec = KernelSpec(argv=argv, display_name="course grader", language="python", env={}, metadata={})
        self.km.provisioner = _provisioner_class()(kernel_id="grading", kernel_spec=self.km._kernel_spec, parent=self.km)
        self.km.provisioner.sandbox = sandbox
        self.client = _executor_class()(new_notebook(), km=self.km, allow_errors=True, record_timing=False,
                                        startup_timeout=int(startup_timeout), log=_LOG)
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115 - closed in close()
        try:
            self._run_sync(self._start)(workdir, env)
        except BaseException:
            self.close()
            raise

    async def _start(self, workdir: Path, env: dict) -> None:
        streams = {"stdout": self._log, "stderr": self._log} if self._log else {}
        await self.km.start_kernel(cwd=str(workdir), env=env, **streams)
        await self.client.async_start_new_kernel_client()

    @property
    def process(self):
        """The launched :class:`subprocess.Popen` (bwrap's process in the sandbox), or None before it started."""
        provisioner = getattr(self.km, "provisioner", None)
        return getattr(provisioner, "process", None)

    def alive(self) -> bool:
        """Whether the kernel's process was started and has not exited."""
        process = self.process
        return process is not None and process.poll() is None

    def death(self) -> str:
        """How the kernel process ended, in words."""
        process = self.process
        code = process.poll() if process is not None else None
        if code is None:
            return say("death_unresponsive")
        if self.sandboxed and code > 128:   # bwrap exits with 128 + the signal that killed the kernel
            code = -(code - 128)
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return say("death_signal", signal=name)
        return say("death_exit", code=code)

    def execute(self, code: str, timeout: float, budget: OutputBudget | None, store_history: bool = True,
                keep=lambda output: False, cancel: threading.Event | None = None) -> Outcome:
        """Run ``code``; collect its outputs (within ``budget``; ``keep(output)`` bypasses the budget)."""
        if cancel is not None and cancel.is_set():
            return Outcome(RunState.CANCELLED)
        return self._run_sync(self._execute)(code, timeout, budget, store_history, keep, cancel)

    async def _execute(self, code, timeout, budget, store_history, keep, cancel) -> Outcome:
        from nbclient.exceptions import CellTimeoutError, DeadKernelError
        from nbformat.v4 import new_code_cell, new_notebook

        cell = new_code_cell(code)
        client = self.client
        client.nb = new_notebook(cells=[cell])   # a scratch notebook: outputs are copied by the caller
        client._display_id_map = {}
        client.budget, client.keep, client.marker = budget, keep, None
        client.timeout_func = lambda _cell: max(float(timeout), 0.1)
        replies: list[dict] = []
        client.on_cell_executed = lambda **kw: replies.append(kw.get("execute_reply") or {})
        started = time.monotonic()
        try:
            await client.async_execute_cell(cell, 0, store_history=store_history)
        except (CellTimeoutError, DeadKernelError) as stopped:
            await asyncio.sleep(0)   # let nbclient's cancelled polling tasks finish
            if cancel is not None and cancel.is_set():
                return Outcome(RunState.CANCELLED, list(cell.outputs), seconds=time.monotonic() - started)
            if isinstance(stopped, CellTimeoutError):
                return Outcome(RunState.TIMEOUT, list(cell.outputs), seconds=time.monotonic() - started)
            return Outcome(RunState.DEAD, list(cell.outputs), evalue=self.death(), seconds=time.monotonic() - started)
        content = (replies[-1].get("content") if replies else None) or {}
        seconds = time.monotonic() - started
        if content.get("status") == "error":
            return Outcome(RunState.ERROR, list(cell.outputs), content.get("ename", ""), content.get("evalue", ""), seconds)
        return Outcome(RunState.OK, list(cell.outputs), seconds=seconds)

    def kill(self) -> None:
        """Kill the kernel (safe from another thread: nothing else is touched).

        In the sandbox the kernel process itself is killed first: the sandbox's PID 1 then reaps it (so
        its CPU time is accounted) and ends, and with it every other process inside and bwrap; should
        it not, PID 1 is killed, then bwrap's process group. Without the sandbox, the kernel's process
        group is killed.
        """
        process = self.process
        if process is None or process.poll() is not None:
            return
        with self._lock:
            pidfd = getattr(self.km.provisioner, "sandbox_pidfd", None)
            if pidfd is not None:
                for how in (self._kill_kernel_inside, lambda: signal.pidfd_send_signal(pidfd, signal.SIGKILL)):
                    try:
                        how()
                        process.wait(timeout=5)
                        return
                    except (OSError, subprocess.TimeoutExpired):
                        continue
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            try:
                process.kill()
            except OSError:
                pass

    def _kill_kernel_inside(self) -> None:
        """SIGKILL the sandbox's main process (the kernel), the child of its PID 1."""
        init = self.km.provisioner.sandbox_pid
        children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
        if not children:
            raise ProcessLookupError("the sandbox has no process left")
        kernel_fd = os.pidfd_open(int(children[0]))
        try:   # still PID 1's child once pinned by the pidfd: then the signal reaches that very process
            if children[0] in Path(f"/proc/{init}/task/{init}/children").read_text().split():
                signal.pidfd_send_signal(kernel_fd, signal.SIGKILL)
        finally:
            os.close(kernel_fd)

    def _reap_sandbox(self) -> None:
        """Reap the sandbox's PID 1 when bwrap left it to this process (a child subreaper, such as the
        throughput benchmark), so that the CPU time of the sandbox counts among this process's children."""
        with self._lock:
            pidfd = getattr(self.km.provisioner, "sandbox_pidfd", None)
            if pidfd is not None and hasattr(os, "P_PIDFD"):
                try:
                    os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
                except OSError:   # not this process's child: the system reaps it
                    pass

    def close(self) -> None:
        """Kill the kernel and release its sockets, files and log."""
        self.kill()
        process = self.process
        if process is not None:
            try:
                process.wait(timeout=10)
            except Exception:  # noqa: BLE001 - best effort
                pass
        self._reap_sandbox()
        kc = getattr(self.client, "kc", None)
        if kc is not None:
            try:
                kc.stop_channels()
                kc.context.destroy(linger=0)
            except Exception:  # noqa: BLE001
                pass
        try:
            self._run_sync(self.km.cleanup_resources)()
        except Exception:  # noqa: BLE001
            pass
        for name in ("sandbox-" + Path(self.km.connection_file).name,):
            try:
                (Path(self.km.connection_file).parent / name).unlink()
            except OSError:
                pass
        with self._lock:
            pidfd = getattr(self.km.provisioner, "sandbox_pidfd", None)
            if pidfd is not None:
                os.close(pidfd)
                self.km.provisioner.sandbox_pidfd = None
        if self._log:
            self._log.close()
            self._log = None
