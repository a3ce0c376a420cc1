"""The limits and switches of a grading run (the options of ``course grade``)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CELL_TIMEOUT = 120
DEFAULT_NOTEBOOK_TIMEOUT = 1200
DEFAULT_MEMORY_MB = 6144
DEFAULT_MAX_OUTPUT_KB = 2048
DEFAULT_FILE_SIZE_MB = 512
DEFAULT_MAX_RESTARTS = 3
DEFAULT_SCRATCH_MB = 512
DEFAULT_MAX_PROCESSES = 512
DEFAULT_MAX_OPEN_FILES = 1024


@dataclass
class GradeOptions:
    """Limits and switches of a grading run (see ``course grade --help``).

    Attributes:
        cell_timeout: seconds one cell may run before it is stopped.
        notebook_timeout: seconds a whole notebook may run (all cells, restarts and replays).
        workers: submissions graded in parallel.
        memory_mb: address-space cap per kernel (``RLIMIT_AS``), 0 for none.
        max_output_kb: output kept per notebook; the rest is dropped with a note.
        file_size_mb: largest file a kernel may write (``RLIMIT_FSIZE``).
        max_restarts: kernel restarts per submission before grading of it stops.
        mode: ``COURSE_MODE`` of the kernels (``quick``).
        force: re-grade submissions already in the journal.
        sandbox: run each kernel in the bubblewrap sandbox (``--no-sandbox`` turns it off).
        scratch_mb: size of the sandbox's private writable scratch (``/tmp``, ``HOME``, cwd).
        max_processes: processes and threads per sandbox (``RLIMIT_NPROC``; sandbox only).
        max_open_files: open files per kernel process (``RLIMIT_NOFILE``; sandbox only).
        cpu_seconds: CPU seconds per kernel process (``RLIMIT_CPU``; sandbox only); 0 means
            ``notebook_timeout`` times the number of CPU cores.
    """

    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT
    workers: int = 1
    memory_mb: int = DEFAULT_MEMORY_MB
    max_output_kb: int = DEFAULT_MAX_OUTPUT_KB
    file_size_mb: int = DEFAULT_FILE_SIZE_MB
    max_restarts: int = DEFAULT_MAX_RESTARTS
    mode: str = "quick"
    force: bool = False
    sandbox: bool = True
    scratch_mb: int = DEFAULT_SCRATCH_MB
    max_processes: int = DEFAULT_MAX_PROCESSES
    max_open_files: int = DEFAULT_MAX_OPEN_FILES
    cpu_seconds: int = 0
