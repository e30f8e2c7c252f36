"""Entries of real folders that are not image files: named pipes, sockets, broken links.

Opening a named pipe for reading waits for a writer forever, so every test that
meets one runs under :func:`deadline`: a regression fails in seconds instead of
hanging the suite.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

#: The problem kind each odd entry must be reported as.
ODD_KINDS = {"pipe": "not_a_regular_file", "socket": "not_a_regular_file", "dangling": "broken_link",
             "loop": "broken_link", "loop_a": "broken_link", "loop_b": "broken_link"}


def make_odd_entries(folder: Path, template: str = "{kind}.png") -> dict[str, str]:
    """Put a named pipe, a unix socket, a link to nothing, a link to itself and a two-link loop in ``folder``.

    Each is named ``template.format(kind=..., n=...)`` (``n`` counts from 1, for layouts
    that want digits). Returns the name of each entry and the problem kind expected.
    """
    folder.mkdir(parents=True, exist_ok=True)
    names = {kind: template.format(kind=kind, n=n) for n, kind in enumerate(ODD_KINDS, start=1)}
    os.mkfifo(folder / names["pipe"])
    # bound by a relative name: a unix socket's path may not exceed about 100 bytes, tmp_path often does
    with contextlib.chdir(folder), socket.socket(socket.AF_UNIX) as sock:
        sock.bind(names["socket"])
    os.symlink("does-not-exist" + Path(names["dangling"]).suffix, folder / names["dangling"])
    os.symlink(names["loop"], folder / names["loop"])
    os.symlink(names["loop_b"], folder / names["loop_a"])
    os.symlink(names["loop_a"], folder / names["loop_b"])
    return {names[kind]: expected for kind, expected in ODD_KINDS.items()}


@contextlib.contextmanager
def deadline(seconds: int = 30) -> Iterator[None]:
    """Raise TimeoutError in the test after ``seconds`` (a blocked open() of a pipe is interrupted too)."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: was a named pipe or a socket opened?")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def problems_of(result, folder: str = "") -> dict[str, str]:
    """``where -> kind`` of a load result's problems (``where`` without ``folder/``)."""
    prefix = f"{folder}/" if folder else ""
    return {where.removeprefix(prefix): kind for kind, where in zip(result.problems["kind"], result.problems["where"])}
