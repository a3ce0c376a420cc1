"""Instructor grading: ``course grade`` runs submitted lesson notebooks in a sandbox and writes a gradebook.

How a submission is graded
--------------------------
1. **Read** the file (never modified; it may be anything: a notebook, a PDF, garbage).
2. **Rebuild** the notebook from trusted material, the way nbgrader's "overwrite cells" step does:
   every cell comes from the lesson generated from ``solutions/`` except the student's *solution
   cells* (nbgrader metadata ``"solution": true``), matched by ``grade_id`` (or, when a student lost
   the metadata, by the functions the cell defines). Edited, deleted, added or re-tagged cells
   therefore change nothing but the student's own answers; each such change is noted.
3. **Run** the rebuilt notebook cell by cell (nbclient) in a fresh kernel of its own, inside a
   bubblewrap sandbox: read-only system and Python environment, a private size-limited scratch
   folder as working directory, ``HOME`` and ``/tmp``, no network, its own PID namespace, an
   unprivileged user, limits on memory, CPU time, processes, open files and file size, and
   per-cell and per-notebook timeouts. A cell that times out or kills its kernel is recorded, the
   kernel is restarted, the cells before it are replayed without it, and grading goes on.
4. **Test** each exercise at the position of its check cell (nbgrader ``"grade": true`` with
   ``points``): the check cell's full *solution-side* source (visible self-check + the ``BEGIN
   HIDDEN TESTS`` region, which lessons do not contain) is sent to the kernel as code when it
   runs, through a guard that first undoes whatever the student's code changed in ``course_lib``,
   NumPy, ``math`` and ``builtins`` and executes the tests in a sealed namespace. The exercise
   earns its points when the tests raise nothing, every self-check run by them passes, and the
   guard finds nothing tampered with afterwards.
5. **Record** one row per submission and exercise (points, :class:`~course_lib.grading.results.Status`
   and the reason for every lost point) in ``journal.jsonl`` (append-only) and rewrite
   ``gradebook.csv`` / ``gradebook.json`` atomically; write ``feedback/<student>-<id>.html``.

Modules (one idea each; only :mod:`~course_lib.grading.guard` is ever imported inside a kernel,
which is why this file imports nothing)::

    assignment    a day's trusted material: solution, lesson, exercise list
    submissions   finding submitted files, their content ids, reading them as notebooks
    plan          rebuilding a notebook from the lesson + the student's answer cells
    guard         runs inside the kernel: snapshot / restore, sealed test run, nonce-tagged verdicts
    sandbox       the bubblewrap command line a kernel runs under, and its checks
    kernel        one kernel process (sandboxed or not) with its limits, driven by nbclient
    runner        executing a plan, replay after a crash; grading one submission's bytes
    results       statuses (an enum), failure kinds, reasons, exercise and submission results
    options       the limits and switches of a run (``course grade --help``)
    gradebook     journal.jsonl + gradebook.csv / gradebook.json
    feedback      the per-student HTML page (nbconvert)
    batch         scheduling, workers, watching the course's files, the CLI entry
"""
