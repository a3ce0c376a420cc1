"""The grading sandbox (course_lib.grading.sandbox): its command line, its errors, and one test per attack.

The attack tests grade, in one batch with 2 workers, a control submission and one submission per
attack of issue "grade untrusted submissions in a sandbox": each is the perfect Day-02 answer plus
a few lines that try to get out. Every attack must be blocked and every submission must still earn
full points. They need bubblewrap and skip, saying so, where it cannot run (CI installs it).
"""

import csv
import html
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

import course_lib
from course_lib import cli
from course_lib.grading import sandbox
from course_lib.grading.batch import grade_batch
from course_lib.grading.options import DEFAULT_MAX_PROCESSES, GradeOptions

TOKEN = uuid.uuid4().hex[:12]
SECRET = f"grader-secret-{TOKEN}"


# --- without bubblewrap -----------------------------------------------------------------------------

def test_missing_bubblewrap_is_one_line_naming_the_package(monkeypatch):
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)
    with pytest.raises(sandbox.SandboxError) as caught:
        sandbox.create(64, [])
    message = str(caught.value)
    assert "\n" not in message and "bubblewrap" in message and "Linux" in message and "--no-sandbox" in message


def test_course_grade_without_bubblewrap_stops_with_that_line(monkeypatch, tmp_path, capsys, write):
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)
    write(tmp_path / "subs" / "amy.ipynb", b"not a notebook")
    status = cli.main(["grade", str(tmp_path / "subs"), "--day", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("course: error: ") and "bubblewrap" in err, err


def test_no_sandbox_grades_with_a_warning_and_a_note_on_every_row(monkeypatch, tmp_path, write):
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)
    write(tmp_path / "subs" / "amy.ipynb", b"not a notebook")
    write(tmp_path / "subs" / "ben.ipynb", b"")
    lines = []
    summary = grade_batch([tmp_path / "subs"], 2, tmp_path / "out", GradeOptions(sandbox=False), log=lines.append)
    assert any(line.startswith("WARNING: grading WITHOUT the sandbox") for line in lines), lines
    assert any("WITHOUT the sandbox" in w for w in summary.warnings)
    with open(tmp_path / "out" / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and all("graded with --no-sandbox" in row["notes"] for row in rows)


# --- the command line ---------------------------------------------------------------------------------

def make(as_root, read_only=("/opt/env",)):
    return sandbox.Sandbox("bwrap", tuple(read_only), (("/host/fontlist.json", "/tmp/.cache/matplotlib/f.json"),),
                           256, as_root, True, (("COURSE_DATA_DIR", "/data"),))


@pytest.mark.parametrize("as_root", [False, True])
def test_command_line_isolates_everything(as_root, tmp_path):
    argv = make(as_root).command(["/opt/env/bin/python", "-c", "pass"], connection_file=tmp_path / "k.json",
                                 info_fd=5, seccomp_fd=6)
    text = " ".join(argv)
    for option in ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
                   "--new-session", "--info-fd 5", "--seccomp 6", "--chdir /tmp", "--proc /proc", "--dev /dev"):
        assert option in text
    assert f"--size {256 << 20} --tmpfs /tmp" in text                     # the size-limited scratch
    assert "--ro-bind /opt/env /opt/env" in text and "--ro-bind /usr /usr" in text
    assert f"--ro-bind {tmp_path / 'k.json'} /run/kernel.json" in text
    assert "--bind " not in text and "--dev-bind" not in text             # nothing of the host is writable
    assert argv[-4:] == ["--", "/opt/env/bin/python", "-c", "pass"]
    if as_root:   # no user namespace: the kernel drops to its own uid, keeping only what it needs for that
        assert "--unshare-user" not in text and "--cap-drop ALL --cap-add CAP_SETUID --cap-add CAP_SETGID" in text
        assert make(True).uid_for(1) == make(True).uid_for(0) + 1 > sandbox.ROOT_UID_BASE
    else:
        assert "--unshare-user --uid 65534 --gid 65534 --disable-userns" in text and make(False).uid_for(1) == -1


def test_kernel_environment_holds_none_of_the_graders_variables(monkeypatch):
    monkeypatch.setenv("COURSE_GRADER_SECRET", SECRET)
    monkeypatch.setenv("PYTHONPATH", "/somewhere/with/solutions")
    env = make(False).environment()
    assert SECRET not in env.values() and "PYTHONPATH" not in env
    assert env["HOME"] == env["TMPDIR"] == "/tmp" and env["COURSE_DATA_DIR"] == "/data"


def test_a_folder_the_sandbox_shows_may_not_contain_a_hidden_one(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: "bwrap")
    monkeypatch.setattr(sandbox, "python_paths", lambda: [str(tmp_path)])
    with pytest.raises(sandbox.SandboxError, match="contains .*solutions"):
        sandbox.create(64, [tmp_path / "solutions"])


def test_seccomp_program_is_whole_instructions():
    program = sandbox.seccomp_filter()
    if program is None:
        pytest.skip(f"no seccomp table for {os.uname().machine}")
    assert len(program) % 8 == 0 and 8 <= len(program) // 8 < 32


def test_inside_the_sandbox(needs_sandbox):
    """One process in the sandbox looks around: its user, its files, its network, its limits."""
    box = sandbox.create(64, [])
    probe = r"""
import ctypes, errno, os, socket
print("uid", os.getuid())
print("cwd", os.getcwd(), os.environ["HOME"])
print("root", sorted(os.listdir("/")))
try:
    socket.create_connection(("127.0.0.1", 22), timeout=2)
    print("net open")
except OSError as e:
    print("net", e.errno)
libc = ctypes.CDLL(None, use_errno=True)
print("userns", libc.unshare(0x10000000), ctypes.get_errno())
try:
    open("/tmp/fill", "wb").write(b"x" * (80 << 20))
except OSError as e:
    print("fill", e.errno)
"""
    result = box.run([sys.executable, "-c", probe])
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "cwd /tmp /tmp" in out and "net open" not in out and f"fill {28}" in out      # ENOSPC at 64 MB
    assert "userns -1 1" in out or "userns -1 38" in out                                   # EPERM (seccomp)
    shown = eval(out.split("root ", 1)[1].splitlines()[0])
    assert not {"home", "root", "work", "srv", "mnt", "var", "run", "media"} & set(shown) - {
        p.split("/")[1] for p in box.read_only}


# --- one test per attack --------------------------------------------------------------------------------

PROBE = '''
def _attack(what, action):
    try:
        print("ATTACK", what, "->", repr(action())[:200])
    except BaseException as _error:
        print("ATTACK", what, "blocked:", type(_error).__name__)
'''


def attacks(paths):
    """Student -> lines appended to the perfect first answer (``paths`` names the grader's folders)."""
    marker = f"atk-{TOKEN}"
    targets = {"home": paths["home"] / marker, "tmp": paths["host_tmp"] / marker, "out": paths["out"] / marker,
               "submissions": paths["subs"] / marker}
    writes = "".join(f"_attack('write {name}', lambda: open({str(path)!r}, 'w').write('pwned'))\n"
                     for name, path in targets.items())
    writes += ("import course_lib, pathlib\n"
               f"_attack('write course_lib', lambda: (pathlib.Path(course_lib.__file__).parent / {marker + '.py'!r})"
               ".write_text('pwned'))\n")
    reads = ("import course_lib, pathlib\n"
             "_solutions = pathlib.Path(course_lib.__file__).resolve().parents[1] / 'solutions'\n"
             "_attack('read solutions', lambda: [p.read_text()[:5000] for p in sorted(_solutions.glob('day02*'))])\n"
             f"_attack('read another student', lambda: open({str(paths['subs'] / 'control' / 'day02_clustering.ipynb')!r})"
             ".read())\n")
    network = (f"import socket\n_attack('connect', lambda: socket.create_connection(('127.0.0.1', {paths['port']}), "
               "timeout=3).sendall(b'hello from a submission'))\n")
    late = (f"import time; time.sleep(20); open({str(targets['tmp']) + '-late'!r}, 'w').write('x')"
            f"  # {marker}-detached")
    detached = ("import subprocess, sys\n"
                f"_late = {late!r}\n"
                "_attack('detach', lambda: subprocess.Popen([sys.executable, '-c', _late], start_new_session=True,"
                " stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)\n")
    bomb = ("import subprocess, sys, os, time\n"
            "_bomb = 'import os, time\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        break\\n"
            "time.sleep(3)\\n'\n"
            "_p = subprocess.Popen([sys.executable, '-c', _bomb])\n"
            "time.sleep(1.5)\n"
            "print('BOMB peak', len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
            "_p.wait(60)\n")
    fill = ("import errno, os\n"
            "def _fill(path):\n"
            "    written = 0\n"
            "    with open(path, 'wb') as handle:\n"
            "        try:\n"
            "            while True:\n"
            "                handle.write(b'x' * (1 << 20))\n"
            "                written += 1\n"
            "        except OSError as error:\n"
            "            return written, errno.errorcode.get(error.errno)\n"
            "print('FILL', *_fill(os.path.join(os.environ['HOME'], 'fill.bin')))\n")
    environment = ("import os\nprint('ENV', dict(os.environ))\n"
                   "for _pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
                   "    _attack('environ ' + _pid, lambda: open(f'/proc/{_pid}/environ', 'rb').read())\n"
                   "print('UID', os.getuid())\n")
    return {"atk_writes": writes, "atk_reads": reads, "atk_network": network, "atk_detached": detached,
            "atk_fork_bomb": bomb, "atk_fill": fill, "atk_environment": environment}


@pytest.fixture(scope="module")
def attack_batch(tmp_path_factory, day02, make_submission, write, sandbox_works):
    """Grade the control and the attack submissions (2 workers); a loopback listener counts connections."""
    if not sandbox_works:
        pytest.skip("bubblewrap (bwrap) is not installed here; CI installs it (apt-get install bubblewrap)")
    base = tmp_path_factory.mktemp("attacks")
    subs, out = base / "submitted", base / "out"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    received: list[bytes] = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            received.append(connection.recv(100))
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    paths = {"home": Path.home(), "host_tmp": Path(tempfile.gettempdir()), "out": out, "subs": subs,
             "port": listener.getsockname()[1]}
    answers = dict(day02.answers)
    control = dict(answers)
    control[day02.KPP] += f"\n# my own work, {TOKEN}-control\n"
    write(subs / "control" / day02.solution.name, make_submission(control))
    for student, lines in attacks(paths).items():
        attacked = dict(answers)
        attacked[day02.KPP] = answers[day02.KPP] + "\n" + PROBE + lines
        write(subs / student / day02.solution.name, make_submission(attacked))
    os.environ["COURSE_GRADER_SECRET"] = SECRET
    log: list[str] = []
    try:
        cell_timeout = max(120, int(os.environ.get("GRADING_TEST_CELL_TIMEOUT", "0")))   # see test_batch.py
        options = GradeOptions(cell_timeout=cell_timeout, notebook_timeout=10 * cell_timeout, workers=2)
        summary = grade_batch([subs], 2, out, options, log=log.append)
    finally:
        os.environ.pop("COURSE_GRADER_SECRET", None)
        stop.set()
        thread.join(5)
        listener.close()
    processes = [p for p in Path("/proc").iterdir() if p.name.isdigit()]
    survivors = []
    for process in processes:
        try:
            if f"{TOKEN}-detached".encode() in (process / "cmdline").read_bytes():
                survivors.append(process.name)
        except OSError:
            continue
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    book = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))
    pages = {s["student"]: (out / s["feedback"]).read_text(encoding="utf-8") for s in book["submissions"]}
    result = type("Attacks", (), dict(out=out, subs=subs, rows=rows, pages=pages, summary=summary, log="\n".join(log),
                                      received=received, survivors=survivors, paths=paths))
    yield result
    for target in [Path(p) / f"atk-{TOKEN}" for p in (paths["home"], paths["host_tmp"], out, subs)] + [
            Path(course_lib.__file__).parent / f"atk-{TOKEN}.py", paths["host_tmp"] / f"atk-{TOKEN}-late"]:
        target.unlink(missing_ok=True)   # only if an attack got through (the tests then fail)


def full_points(batch, student):
    got = {r["exercise"]: r for r in batch.rows if r["student"] == student}
    assert len(got) == 3 and all(r["points"] == "2" for r in got.values()), (batch.log, got)


def attack_lines(batch, student):
    """What the attack printed (its ``ATTACK ...`` output lines, not its source)."""
    return [html.unescape(line) for line in re.findall(r"ATTACK ([^\n<]*)", batch.pages[student])]


@pytest.mark.slow
def test_control_submission_earns_full_points_next_to_the_attacks(attack_batch):
    full_points(attack_batch, "control")
    assert attack_batch.summary.errors == 0 and not attack_batch.summary.warnings, attack_batch.log


@pytest.mark.slow
def test_writes_outside_the_scratch_are_blocked(attack_batch):
    full_points(attack_batch, "atk_writes")
    lines = attack_lines(attack_batch, "atk_writes")
    assert len(lines) == 5 and all("blocked" in line for line in lines if "write tmp" not in line), lines
    for folder in ("home", "host_tmp", "out", "subs"):   # /tmp inside is the private scratch, not the host's
        assert not (attack_batch.paths[folder] / f"atk-{TOKEN}").exists(), folder
    assert not (Path(course_lib.__file__).parent / f"atk-{TOKEN}.py").exists()


@pytest.mark.slow
def test_solutions_and_other_students_cannot_be_read(attack_batch):
    full_points(attack_batch, "atk_reads")
    page = attack_batch.pages["atk_reads"]
    lines = attack_lines(attack_batch, "atk_reads")
    assert any("read solutions -> []" in line for line in lines), lines   # solutions/ is not there at all
    assert any("read another student blocked" in line for line in lines), lines
    assert "BEGIN HIDDEN TESTS" not in page and "far-apart pair" not in page and f"{TOKEN}-control" not in page


@pytest.mark.slow
def test_no_connection_reaches_a_loopback_listener(attack_batch):
    full_points(attack_batch, "atk_network")
    assert attack_batch.received == []
    assert any("connect blocked" in line for line in attack_lines(attack_batch, "atk_network"))


@pytest.mark.slow
def test_no_process_outlives_its_kernel(attack_batch):
    full_points(attack_batch, "atk_detached")
    assert any("detach ->" in line for line in attack_lines(attack_batch, "atk_detached"))   # it did start
    assert attack_batch.survivors == []


@pytest.mark.slow
def test_a_fork_bomb_is_capped(attack_batch):
    full_points(attack_batch, "atk_fork_bomb")
    peak = int(re.search(r"BOMB peak (\d+)", attack_batch.pages["atk_fork_bomb"]).group(1))
    assert 50 < peak <= DEFAULT_MAX_PROCESSES, peak


@pytest.mark.slow
def test_filling_the_scratch_stops_at_its_size(attack_batch):
    full_points(attack_batch, "atk_fill")
    written, code = re.search(r"FILL (\d+) (\w+)", attack_batch.pages["atk_fill"]).groups()
    assert code == "ENOSPC" and 0 < int(written) <= GradeOptions().scratch_mb


@pytest.mark.slow
def test_the_graders_environment_is_not_visible(attack_batch):
    full_points(attack_batch, "atk_environment")
    page = attack_batch.pages["atk_environment"]
    assert "ENV {" in page and SECRET not in page
    uid = int(re.search(r"UID (\d+)", page).group(1))
    assert uid != 0 and uid != os.getuid()
    everything = [attack_batch.out / "gradebook.csv", attack_batch.out / "gradebook.json",
                  attack_batch.out / "journal.jsonl", *(attack_batch.out / "logs").iterdir()]
    assert not any(SECRET in path.read_text(errors="replace") for path in everything)
