"""`curate browse` serves the FiftyOne App (HTTP 200) and leaves no process behind on Ctrl+C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from tests.browse._data import tiny_store
from tests.browse.conftest import free_port

pytestmark = pytest.mark.slow


def _get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status
    except OSError:
        return None


def test_app_answers_and_stops_cleanly(fo, tmp_path):
    import psutil

    store, _ = tiny_store(tmp_path)
    port = free_port()
    command = [sys.executable, "-m", "curate", "browse", "browse-tiny", "--store", str(store), "--port", str(port),
               "--quiet", "--dataset-name", "browse-tiny-app"]
    process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    children: list = []
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
        reader.start()
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:  # the URL is printed once the App is up
            if any(f"FiftyOne App: {url}" in line for line in lines):
                break
            time.sleep(0.2)
        assert any(f"FiftyOne App: {url}" in line for line in lines), f"no App URL printed; output: {lines}"
        assert _get(url + "/") == 200
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGINT)  # what Ctrl+C does
        assert process.wait(timeout=60) == 0
        reader.join(timeout=10)
        assert not any("Aborted" in line or "Traceback" in line for line in lines), lines
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"left running: {[p.cmdline() for p in alive]}"
        assert _get(f"http://127.0.0.1:{port}/") is None
    finally:
        for p in [*children, process]:
            try:
                (p.kill() if isinstance(p, psutil.Process) else p.kill())
            except (psutil.NoSuchProcess, ProcessLookupError, OSError):
                pass
        if process.poll() is None:
            process.wait(timeout=10)
