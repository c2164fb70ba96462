"""data/__main__.py: `python -m data info` and `prepare`, incl. a missing or broken data.recon."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data import cache, dti, secret
from data.__main__ import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "cache"))
    for name in (secret.ENV_SECRET, secret.ENV_SECRET_FILE):  # the public default
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache"


def test_info_runs(tmp_cache, capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_cache) in out
    for name in ("mnist:", "dti:", "recon"):
        assert name in out
    assert "cache_valid: False" in out
    assert "grader data secret: none (public default" in out


def test_info_reports_missing_recon(tmp_cache, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "data.recon", None)  # makes `import data.recon` fail
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "recon: not available (" in out and "dti:" in out


def test_prepare_recon_missing_fails_cleanly(tmp_cache, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "data.recon", None)
    assert main(["prepare", "recon"]) == 1
    assert "recon: not available (" in capsys.readouterr().err


def test_prepare_dti_builds_valid_cache(tmp_cache, capsys, monkeypatch):
    # a small simulation keeps this a test of the CLI plumbing (counts are part of the params)
    monkeypatch.setattr(dti, "COUNTS", {s: (40, 30, 30) for s in dti.SUBJECTS})
    assert main(["prepare", "dti"]) == 0
    assert cache.manifest_ok(tmp_cache / "dti", dti.offline_params())
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.count("cache_valid: True") >= 1


def test_bad_target_is_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["prepare", "imagenet"])
    assert e.value.code == 2


def test_module_entry_point():
    # `python -m data` reaches main(); --help needs no heavy imports (info is tested in-process)
    r = subprocess.run([sys.executable, "-m", "data", "--help"], cwd=REPO,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "prepare" in r.stdout and "info" in r.stdout


def test_prepare_grader_prepares_only_the_datasets_named(tmp_cache, capsys, monkeypatch):
    """A lab 4 autograder prepares lab 4's data only (``--datasets dti``), not MNIST or lab 5's subset."""
    from data import mnist

    monkeypatch.setattr(dti, "COUNTS", {s: (40, 30, 30) for s in dti.SUBJECTS})
    monkeypatch.setattr(mnist, "prepare_offline", lambda **kw: pytest.fail("MNIST was prepared for a dti-only grader"))
    monkeypatch.setitem(sys.modules, "data.recon", None)  # lab 5's subset would fail to import
    assert main(["prepare", "grader", "--datasets", "dti"]) == 0
    assert cache.manifest_ok(tmp_cache / "dti", dti.offline_params())
    assert "recon subset" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["prepare", "dti", "--datasets", "dti"])
    assert e.value.code == 2
