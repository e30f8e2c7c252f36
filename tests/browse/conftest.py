"""A real mongod for the FiftyOne tests: started once per session on a free local port.

FiftyOne is pointed at it with ``FIFTYONE_DATABASE_URI`` (the first database call then
takes a fraction of a second instead of FiftyOne starting its own server), and the tests
share one temporary database folder, since mongod writes about 300 MB of journal at once.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mongod exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"mongod did not listen on port {port} within {timeout:.0f} s")


@pytest.fixture(scope="session")
def mongo_env(tmp_path_factory):
    """Environment variables that point FiftyOne at this session's mongod (also set in os.environ)."""
    from curate.browse.db import check_mongod, fiftyone_dir, mongod_path

    if fiftyone_dir() is None:
        pytest.skip("fiftyone is not installed: `make browse-deps` installs it with a working mongod")
    check_mongod()  # installed but broken is a failure of the install step, not a reason to skip
    dbpath = tmp_path_factory.mktemp("mongod")
    port = free_port()
    process = subprocess.Popen(
        [str(mongod_path()), "--dbpath", str(dbpath), "--port", str(port), "--bind_ip", "127.0.0.1",
         "--nounixsocket", "--logpath", str(dbpath / "mongod.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "FIFTYONE_DATABASE_URI": f"mongodb://127.0.0.1:{port}",
        "FIFTYONE_DATABASE_NAME": "curate-tests",
        "FIFTYONE_DO_NOT_TRACK": "true",
        "FIFTYONE_DATABASE_VALIDATION": "false",
        "CURATE_FIFTYONE_DIR": str(tmp_path_factory.mktemp("fiftyone")),
    }
    saved = {k: os.environ.get(k) for k in env}
    try:
        _wait_for(port, process)
        os.environ.update(env)
        yield env
    finally:
        process.terminate()  # SIGTERM: mongod shuts down cleanly
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(dbpath, ignore_errors=True)


@pytest.fixture(scope="session")
def fo(mongo_env):
    """The ``fiftyone`` module, connected to this session's mongod."""
    from curate.browse.db import import_fiftyone

    return import_fiftyone()
