"""The sandbox a grading kernel runs in: a bubblewrap (``bwrap``) command line, and its checks.

What a kernel started through :meth:`Sandbox.command` gets (see the README's threat model):

- the system (``/usr``, ``/etc``, ``/bin``, ``/lib*``, ``/sbin``) and the Python environment, read-only,
  at their usual paths; nothing else of the machine: no ``solutions/``, no ``--out`` folder, no
  submissions, no home folder, no ``/run``, ``/var``, ``/srv`` or ``/mnt``;
- a private tmpfs of ``scratch_mb`` as ``/tmp``, which is also its working directory and ``HOME``;
- its own network namespace (no interface but a down loopback): the grader reaches the kernel's
  ZeroMQ ``ipc://`` sockets in the scratch through ``/proc/<pid>/root``, no network needed;
- its own PID, IPC and UTS namespaces: every process it starts dies with it;
- an unprivileged user: in a user namespace as uid 65534 when the grader is not root; when the
  grader is root, a uid of its own per concurrent sandbox (from :data:`ROOT_UID_BASE` on) to which the
  kernel switches before any student code, so that process limits never mix between students;
- no new user namespaces (seccomp on x86-64 and AArch64, ``--disable-userns`` where available),
  hence no way to mount a tmpfs of its own around the scratch limit;
- the resource limits of :mod:`course_lib.grading.kernel` (memory, CPU time, processes, open
  files, file size), set inside before the kernel starts.

bubblewrap is Linux-only; :func:`create` says so in one line when it is missing.
"""

from __future__ import annotations

import os
import platform
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from course_lib.grading.assignment import GradingError

PACKAGE = "bubblewrap"
SCRATCH = "/tmp"                     # the kernel's working directory, HOME and /tmp
SOCKETS = "/tmp/.kernel"             # the kernel's ZeroMQ ipc sockets (inside the scratch)
CONNECTION_FILE = "/run/kernel.json"
INSIDE_UID = 65534                   # "nobody", the uid inside the user namespace
ROOT_UID_BASE = 2_100_000_000        # root: sandboxes run as uids from here on (unassigned, unprivileged)
SHM_MB = 64
SYSTEM_PATHS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Environment variables a sandboxed kernel may inherit (paths into the grader's files are not among them).
PASSED_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "CONDA_PREFIX", "COURSE_DATASET", "COURSE_OFFLINE",
              "KERAS_BACKEND", "LD_LIBRARY_PATH")


class SandboxError(GradingError):
    """The sandbox cannot be used: bubblewrap missing, not starting, or it would expose a hidden folder."""


def missing_message() -> str:
    """The one line ``course grade`` prints when bubblewrap is not installed."""
    return (f"grading runs each submission in a sandbox that needs the `{PACKAGE}` package (the `bwrap` command; "
            f"Linux only): install it, e.g. `apt-get install {PACKAGE}` or `dnf install {PACKAGE}`, "
            "or grade without isolation with --no-sandbox")


@dataclass(frozen=True)
class Sandbox:
    """How to start a kernel in the sandbox (made by :func:`create`).

    Attributes:
        bwrap: path of the ``bwrap`` executable.
        read_only: host folders bound read-only at the same path (the Python environment, the dataset cache).
        files: ``(host file, sandbox path)`` pairs bound read-only (e.g. matplotlib's font cache).
        scratch_mb: size of the private tmpfs at ``/tmp``.
        as_root: the grader is root (no user namespace; the kernel switches to an unprivileged uid itself).
        disable_userns: bwrap supports ``--disable-userns``.
        env: variables set for the kernel on top of the passed-through ones.
    """

    bwrap: str
    read_only: tuple[str, ...]
    files: tuple[tuple[str, str], ...]
    scratch_mb: int
    as_root: bool
    disable_userns: bool
    env: tuple[tuple[str, str], ...]

    def uid_for(self, slot: int) -> int:
        """The uid the kernel switches to before student code: as root, one of its own per grading process
        and slot (so that process limits never mix between concurrent sandboxes); otherwise none (-1)."""
        return ROOT_UID_BASE + ((os.getpid() & 0xFFFF) << 8) + (slot & 0xFF) if self.as_root else -1

    def environment(self) -> dict[str, str]:
        """The kernel's environment inside the sandbox (to be completed with the run's settings)."""
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env.update(HOME=SCRATCH, TMPDIR=SCRATCH, USER="student", LOGNAME="student",
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]))
        env.update(dict(self.env))
        return env

    def command(self, argv: list[str], *, connection_file: Path | None, info_fd: int | None,
                seccomp_fd: int | None) -> list[str]:
        """The ``bwrap`` command line that runs ``argv`` in the sandbox.

        Args:
            argv: the command inside (absolute paths).
            connection_file: host file bound read-only at :data:`CONNECTION_FILE`, or None.
            info_fd: a pipe bwrap writes ``{"child-pid": N}`` to (the sandbox's PID 1 on the host), or None.
            seccomp_fd: a pipe holding :func:`seccomp_filter`'s program, or None.
        """
        args = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--hostname", "sandbox", "--die-with-parent", "--new-session"]
        if self.as_root:  # only what the kernel needs to switch to its unprivileged uid; then it has nothing
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-user", "--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID)]
            if self.disable_userns:
                args.append("--disable-userns")
        for path in SYSTEM_PATHS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "1777", "--size", str(self.scratch_mb << 20), "--tmpfs", SCRATCH,
                 "--perms", "1777", "--size", str(SHM_MB << 20), "--tmpfs", "/dev/shm",
                 "--perms", "1777", "--dir", SOCKETS]
        made = {"/", SCRATCH, *SYSTEM_PATHS}
        for path in self.read_only:
            args += _parents(path, made) + ["--ro-bind", path, path]
        for host, inside in self.files:
            args += _parents(inside, made, mode="1777") + ["--ro-bind", host, inside]
        if connection_file is not None:
            args += _parents(CONNECTION_FILE, made) + ["--ro-bind", str(connection_file), CONNECTION_FILE]
        args += ["--chdir", SCRATCH]
        if info_fd is not None:
            args += ["--info-fd", str(info_fd)]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        return args + ["--", *argv]

    def run(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """Run ``argv`` in the sandbox (as the kernel would be, minus the kernel) and wait for it."""
        program = seccomp_filter()
        read_end = None
        if program is not None:
            read_end, write_end = os.pipe()
            os.write(write_end, program)
            os.close(write_end)
        try:
            return subprocess.run(self.command(argv, connection_file=None, info_fd=None, seccomp_fd=read_end),
                                  capture_output=True, text=True, timeout=timeout, env=self.environment(),
                                  pass_fds=() if read_end is None else (read_end,), preexec_fn=None)
        finally:
            if read_end is not None:
                os.close(read_end)


def _parents(path: str, made: set[str], mode: str = "0755") -> list[str]:
    """``--dir`` options for the missing parent folders of ``path`` (bwrap would make them 0700)."""
    args = []
    for parent in reversed(Path(path).parents):
        name = str(parent)
        if name in made or any(name == p or name.startswith(p + "/") for p in SYSTEM_PATHS):
            continue
        made.add(name)
        args += ["--perms", mode if name.startswith(SCRATCH + "/") else "0755", "--dir", name]
    return args


def find_bwrap() -> str | None:
    """The ``bwrap`` executable, or None (also None off Linux, where bubblewrap does not exist)."""
    if not sys.platform.startswith("linux"):
        return None
    return shutil.which("bwrap")


def python_paths() -> list[str]:
    """The folders of the running Python environment (prefixes, their real paths, the user site)."""
    import site

    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    found |= {os.path.realpath(p) for p in list(found)}
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else ""
    if user_site and os.path.isdir(user_site) and user_site in sys.path:
        found.add(user_site)
    return _outermost(p for p in found if p and os.path.isdir(p))


def _outermost(paths) -> list[str]:
    """Drop paths inside another one of the list or inside a system folder that is bound anyway."""
    result: list[str] = []
    for path in sorted({os.path.normpath(p) for p in paths}, key=len):
        covers = [*result, *SYSTEM_PATHS]
        if not any(path == c or path.startswith(c.rstrip("/") + "/") for c in covers):
            result.append(path)
    return sorted(result)


def _font_cache() -> tuple[tuple[str, str], ...]:
    """Matplotlib's font list from the grader's cache, so that a kernel does not rebuild it at each start."""
    try:
        import matplotlib
        from matplotlib import font_manager
    except ImportError:
        return ()
    name = f"fontlist-v{font_manager.FontManager.__version__}.json"
    host = Path(matplotlib.get_cachedir()) / name
    return ((str(host), f"{SCRATCH}/.cache/matplotlib/{name}"),) if host.is_file() else ()


def create(scratch_mb: int, hidden, data_dir: Path | None = None) -> Sandbox:
    """Make the sandbox for a grading run and check that it starts.

    Args:
        scratch_mb: size of the private ``/tmp``.
        hidden: folders that must not be visible inside (solutions, the output folder, the submissions,
            the grader's home); a read-only folder that contains one of them is refused.
        data_dir: the dataset cache, bound read-only (and named by ``COURSE_DATA_DIR``) when it exists.

    Raises:
        SandboxError: bubblewrap is missing (:func:`missing_message`), the sandbox does not start, or a
            folder it must show would expose a hidden one.
    """
    bwrap = find_bwrap()
    if bwrap is None:
        raise SandboxError(missing_message())
    read_only = python_paths()
    env: list[tuple[str, str]] = []
    if data_dir is not None and Path(data_dir).is_dir():
        data = os.path.realpath(data_dir)
        read_only = _outermost([*read_only, data])
        env.append(("COURSE_DATA_DIR", data))
    for folder in read_only:
        for secret in hidden:
            secret = os.path.realpath(secret)
            if secret == folder or secret.startswith(folder.rstrip("/") + "/"):
                raise SandboxError(f"the sandbox must show {folder} (read-only) but it contains {secret}, which "
                                   "submissions must not see; move one of them")
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.split()
    newer = _version(version[-1] if version else "0") >= (0, 8, 0)
    sandbox = Sandbox(bwrap, tuple(read_only), _font_cache(), int(scratch_mb), os.geteuid() == 0, newer, tuple(env))
    try:
        probe = sandbox.run([sys.executable, "-c", "import os; print(os.getcwd())"], timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SandboxError(f"the sandbox does not start: {error}") from None
    if probe.returncode != 0 or probe.stdout.strip() != SCRATCH:
        lines = [line for line in (probe.stderr or probe.stdout).splitlines() if line.strip()]
        raise SandboxError("the sandbox does not start here (" + (lines[-1] if lines else f"status {probe.returncode}")
                           + "); bubblewrap needs user namespaces, or root")
    return sandbox


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(".")[:3])
    except ValueError:
        return (0,)


# Classic-BPF seccomp program (what bwrap --seccomp takes): sock_filter = {u16 code, u8 jt, u8 jf, u32 k}.
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000
_EPERM, _ENOSYS = 1, 38
_CLONE_NEWUSER = 0x10000000
# machine -> (AUDIT_ARCH, clone, unshare, clone3, has the x32 ABI)
_SYSCALLS = {"x86_64": (0xC000003E, 56, 272, 435, True), "aarch64": (0xC00000B7, 220, 97, 435, False)}


def seccomp_filter() -> bytes | None:
    """A seccomp program that forbids new user namespaces (and foreign-ABI system calls).

    ``unshare`` and ``clone`` with ``CLONE_NEWUSER`` fail with ``EPERM``; ``clone3`` (whose flags a
    classic filter cannot read) fails with ``ENOSYS``, so that C libraries fall back to ``clone``.
    None on architectures other than x86-64 and AArch64.
    """
    entry = _SYSCALLS.get(platform.machine())
    if entry is None:
        return None
    arch, clone, unshare, clone3, x32 = entry
    program = [(_LD_W_ABS, 0, 0, 4), (_JEQ, 1, 0, arch), (_RET, 0, 0, _ERRNO | _EPERM), (_LD_W_ABS, 0, 0, 0)]
    if x32:
        program += [(_JGE, 0, 1, 0x40000000), (_RET, 0, 0, _ERRNO | _EPERM)]
    program += [(_JEQ, 0, 1, clone3), (_RET, 0, 0, _ERRNO | _ENOSYS),
                (_JEQ, 1, 0, unshare), (_JEQ, 0, 3, clone),
                (_LD_W_ABS, 0, 0, 16), (_JSET, 0, 1, _CLONE_NEWUSER),
                (_RET, 0, 0, _ERRNO | _EPERM), (_RET, 0, 0, _ALLOW)]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
