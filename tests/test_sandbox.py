"""The trusted side of the file system (grader.judge.ingest, grader.judge.sandbox): units, without grading anything.

The end-to-end attacks (through run_autograder and batch --worker-user) are in tests/test_cheating.py
and tests/test_batch.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from grader.judge import ingest
from grader.judge import sandbox
from grader.judge.session import LABS


def test_read_beneath_reads_regular_files_and_refuses_links(tmp_path):
    (tmp_path / "labs").mkdir()
    (tmp_path / "labs" / "lab01_autograd.py").write_bytes(b"x = 1\n")
    (tmp_path / "secret").write_text("root only")
    os.symlink(tmp_path / "secret", tmp_path / "labs" / "lab02_backprop.py")
    os.symlink(tmp_path / "labs", tmp_path / "linked")
    os.mkfifo(tmp_path / "labs" / "lab03_mnist.py")
    assert ingest.read_beneath(tmp_path, "labs/lab01_autograd.py") == b"x = 1\n"
    for rel, why in (("labs/lab02_backprop.py", "symbolic link"), ("linked/lab01_autograd.py", "link"),
                     ("labs/lab03_mnist.py", "not a regular file"), ("../secret", "not a path inside"),
                     ("/etc/passwd", "not a path inside")):
        with pytest.raises(ingest.IngestError, match=why):
            ingest.read_beneath(tmp_path, rel)
    with pytest.raises(ingest.Missing):
        ingest.read_beneath(tmp_path, "labs/nothing.py")


def test_read_beneath_bounds_what_it_reads(tmp_path):
    (tmp_path / "big.py").write_bytes(b"#" * 1001)
    with pytest.raises(ingest.IngestError, match="more than the 1000"):
        ingest.read_beneath(tmp_path, "big.py", limit=1000)
    assert len(ingest.read_beneath(tmp_path, "big.py", limit=1001)) == 1001
    with pytest.raises(ingest.IngestError, match="belong"):
        ingest.read_beneath(tmp_path, "big.py", owner=os.geteuid() + 1)


def test_ingest_takes_the_lab_files_and_says_what_it_refused(tmp_path, capsys):
    sub, labs = tmp_path / "sub", tmp_path / "labs"
    (sub / "repo" / "labs").mkdir(parents=True)
    labs.mkdir()
    names = list(LABS.values())
    (sub / "repo" / "labs" / f"{names[0]}.py").write_text("a = 1\n")
    (sub / f"{names[0]}.py").write_text("top level copy\n")
    os.symlink("/etc/shadow", sub / f"{names[1]}.py")
    (sub / ".git").mkdir()
    (sub / ".git" / f"{names[2]}.py").write_text("not searched\n")
    assert ingest.main([str(sub), str(labs)]) == 0
    out = capsys.readouterr().out
    assert (labs / f"{names[0]}.py").read_text() == "a = 1\n"  # the copy in labs/ wins
    assert not (labs / f"{names[1]}.py").exists() and not (labs / f"{names[2]}.py").exists()
    assert "refused: lab02" in out and "symbolic link" in out and "found 1 lab files" in out
    assert oct((labs / f"{names[0]}.py").stat().st_mode & 0o777) == "0o644"


def test_write_new_replaces_a_link_instead_of_following_it(tmp_path):
    victim = tmp_path / "victim.py"
    victim.write_text("keep me")
    (tmp_path / "labs").mkdir()
    os.symlink(victim, tmp_path / "labs" / "lab01_autograd.py")
    ingest.write_new(tmp_path / "labs", "lab01_autograd.py", b"new")
    assert victim.read_text() == "keep me"
    assert (tmp_path / "labs" / "lab01_autograd.py").read_bytes() == b"new"


def test_worker_environment_is_an_allow_list(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("GRADER_DATA_SECRET", "s3cret")
    monkeypatch.setenv("LANG", "C.UTF-8")
    env = sandbox.worker_env(home="/scratch", tmpdir="/scratch/tmp")
    assert "GITHUB_TOKEN" not in env and "GRADER_DATA_SECRET" not in env
    assert env["LANG"] == "C.UTF-8" and env["HOME"] == "/scratch" and env["TMPDIR"] == "/scratch/tmp"
    assert env["OMP_NUM_THREADS"] == "1" and env["MPLCONFIGDIR"] == "/scratch/.mplconfig"
    assert set(env) <= set(sandbox.ENV_ALLOW) | set(sandbox.ENV_FIXED) | {"HOME", "TMPDIR", "MPLCONFIGDIR"}


@pytest.mark.skipif(os.geteuid() != 0, reason="the worker user is root's to switch to")
def test_an_area_is_roots_and_the_scratch_the_workers(tmp_path):
    from tests.autograder import WORKER_USER, enable_user_switch

    assert enable_user_switch() is None
    area = sandbox.Area(WORKER_USER)
    try:
        assert area.root.stat().st_uid == 0 and area.root.stat().st_mode & 0o777 == 0o711
        assert area.code.stat().st_uid == 0 and area.code.stat().st_mode & 0o777 == 0o755
        assert area.scratch.stat().st_uid == area.uid and area.scratch.stat().st_mode & 0o777 == 0o700
        copy = area.install(Path(ingest.__file__), "labs", "lab01_autograd.py")
        assert copy.parent == area.code / "labs" and copy.stat().st_mode & 0o777 == 0o644
    finally:
        area.remove()
    assert not area.root.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the worker user is root's to switch to")
def test_a_private_folder_on_the_way_to_python_is_named_with_the_fix(tmp_path):
    """A clone in a folder of mode 700: the check names that folder and `chmod o+x`, in one line."""
    from tests.autograder import WORKER_USER, enable_user_switch

    assert enable_user_switch() is None
    for folder in [*reversed(tmp_path.parents), tmp_path]:  # pytest's own folders: passable, as a home is
        os.chmod(folder, folder.stat().st_mode | 0o001)
    private = tmp_path / "private"
    (private / "venv" / "bin").mkdir(parents=True)
    os.chmod(private, 0o700)
    python = private / "venv" / "bin" / "python"
    os.symlink(os.path.realpath(sys.executable), python)
    with pytest.raises(SystemExit) as err:
        sandbox.check_user(WORKER_USER, str(python))
    message = str(err.value)
    assert "\n" not in message and str(private) in message and f"chmod o+x {private}" in message
    with pytest.raises(SystemExit, match="does not exist"):
        sandbox.check_user("no-such-grader-user")
    with pytest.raises(SystemExit, match="is root"):
        sandbox.check_user("root")


@pytest.mark.skipif(os.geteuid() != 0, reason="the worker user is root's to switch to")
def test_end_of_student_removes_only_the_workers_files(tmp_path):
    from tests.autograder import WORKER_USER, enable_user_switch

    assert enable_user_switch() is None
    uid = sandbox.pwd.getpwnam(WORKER_USER).pw_uid
    mine = Path("/tmp") / f"grader-test-root-{os.getpid()}"
    theirs = Path("/tmp") / f"grader-test-worker-{os.getpid()}"
    link = Path("/tmp") / f"grader-test-link-{os.getpid()}"
    mine.write_text("root's")
    theirs.mkdir()
    (theirs / "inner").write_text("x")
    os.symlink(mine, link)
    for p in (theirs, theirs / "inner"):
        os.chown(p, uid, -1)
    os.lchown(link, uid, -1)
    try:
        assert sandbox.end_of_student(WORKER_USER) == []
        assert not theirs.exists() and not link.is_symlink()
        assert mine.read_text() == "root's"  # the link was removed, not followed
    finally:
        mine.unlink(missing_ok=True)


def test_the_judge_kills_only_the_worker_users_processes(monkeypatch):
    """A tampered zygote could report any pid for a worker: as root the judge kills only pids of the
    worker user (never init, itself or another user's process)."""
    from types import SimpleNamespace

    from grader.judge import remote

    fake = SimpleNamespace(user="grader-worker", area=SimpleNamespace(uid=os.geteuid() + 12345))
    monkeypatch.setattr(remote, "_zygote", fake)
    assert not remote._may_kill(1) and not remote._may_kill(0)
    assert not remote._may_kill(os.getpid())  # the judge's own: another uid than the worker's
    fake.area.uid = os.geteuid()
    assert remote._may_kill(os.getpid())
    monkeypatch.setattr(remote, "_zygote", None)
    assert remote._may_kill(os.getpid()) and not remote._may_kill(1)


@pytest.mark.skipif(os.geteuid() != 0, reason="the worker user is root's to switch to")
@pytest.mark.timeout(120)
def test_a_slots_student_code_runs_in_a_cpu_group_of_its_own():
    """Where cgroups can be written (root here), a zygote and its workers share one CPU cgroup per
    slot user, so a student's many busy processes weigh as one against the other slots; the group goes
    with the zygote."""
    from grader.judge import remote
    from tests.autograder import WORKER_USER, enable_user_switch

    assert enable_user_switch() is None
    base = sandbox.cpu_group_base()
    if base is None:
        pytest.skip("no writable CPU cgroup here (a container without cgroup write access)")
    z = remote.Zygote(cwd=Path(sandbox.__file__).parent, user=WORKER_USER)
    try:
        z.wait_ready()
        assert f"/grader-{WORKER_USER}" in Path(f"/proc/{z.proc.pid}/cgroup").read_text()
    finally:
        z.close()
    assert not (base / f"grader-{WORKER_USER}").exists()
    assert not sandbox.live_processes(WORKER_USER) and not z.area.root.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the worker user is root's to switch to")
def test_a_worker_user_with_a_home_of_its_own_is_refused(tmp_path, monkeypatch):
    """check_user's promise: a home folder the user owns would let a student leave files for the next."""
    from tests.autograder import WORKER_USER, enable_user_switch

    assert enable_user_switch() is None
    real = sandbox.pwd.getpwnam(WORKER_USER)
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, real.pw_uid, real.pw_gid)
    fake = type("pw", (), {"pw_uid": real.pw_uid, "pw_gid": real.pw_gid, "pw_dir": str(home)})()
    monkeypatch.setattr(sandbox.pwd, "getpwnam", lambda name: fake)
    with pytest.raises(SystemExit, match="has a home folder"):
        sandbox.check_user(WORKER_USER)


def test_make_private_closes_a_tree_to_others_without_following_links(tmp_path):
    """make_private's promise: chmod -R go-rwx, the owner keeps access, a link's target is untouched."""
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    os.chmod(outside, 0o644)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "labels.npz").write_text("y")
    os.chmod(tree / "sub" / "labels.npz", 0o644)
    os.symlink(outside, tree / "sub" / "link")
    assert sandbox.make_private([str(tree)]) == [str(tree)]
    for path in (tree, tree / "sub", tree / "sub" / "labels.npz"):
        assert path.stat().st_mode & 0o077 == 0 and path.stat().st_mode & 0o700
    assert outside.stat().st_mode & 0o777 == 0o644
    assert sandbox.make_private([str(tree)]) == []  # nothing left to change
