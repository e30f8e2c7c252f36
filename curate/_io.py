"""Small file-system helpers: atomic writes and content hashes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from curate.errors import CurateError

_CHUNK = 1 << 20


class TargetAppeared(CurateError):
    """The folder an atomic write was to create was created meanwhile by someone else."""


def _owner_tag() -> str:
    # host, pid namespace and pid in every temporary name: a later run can tell a killed run's
    # leftovers (same host and namespace, process gone) from the temporaries of a run still at
    # work, also from containers that share a host name but not their pids.
    host = socket.gethostname().split(".")[0].replace("-", "_").replace(".", "_") or "host"
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{host}_{namespace}-{os.getpid()}"


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.{_owner_tag()}."


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Temporaries in ``folder`` left by killed curate runs of this host (``.<name>.<host>_<pidns>-<pid>.<random>.tmp``)."""
    folder = Path(folder)
    host = _owner_tag().rsplit("-", 1)[0]
    found = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        parts = name[1:-4].split(".")
        owner = next((p for p in reversed(parts) if p.startswith(host + "-")), None)
        if owner is None:
            continue
        pid = owner[len(host) + 1 :]
        if pid.isdigit() and not _is_alive(int(pid)):
            found.append(entry)
    return sorted(found)


_SWEPT: set[str] = set()


def _sweep_once(folder: Path) -> None:
    # once per folder and process: a scan writing thousands of cache files lists each folder once
    key = str(folder.resolve())
    if key not in _SWEPT:
        _SWEPT.add(key)
        remove_stale_temporaries(folder)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete :func:`stale_temporaries` of ``folder``; return what was removed."""
    removed = []
    for entry in stale_temporaries(folder):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _as_umask_allows(path: Path, mode: int) -> None:
    # mkstemp/mkdtemp create 0600/0700 whatever the umask, and a rename keeps the mode: without
    # this a colleague or a training service on shared storage could not read what curate wrote.
    os.chmod(path, mode & ~current_umask())


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it into place only on success.

    A failure (or a KeyboardInterrupt) leaves no half-written ``target`` behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    _as_umask_allows(tmp_path, 0o666)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; rename it to ``target`` on success.

    Temporaries of killed runs beside ``target`` are removed first.

    Raises
    ------
    TargetAppeared
        ``target`` was filled by someone else meanwhile; nothing of this write is kept.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(target.parent)
    tmp_path = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent))
    _as_umask_allows(tmp_path, 0o777)
    try:
        yield tmp_path
        try:
            if target.exists():
                target.rmdir()  # only an empty directory may be replaced
            os.replace(tmp_path, target)
        except OSError as exc:
            if target.is_dir() and any(target.iterdir()):
                raise TargetAppeared(f"{target} was written by another run meanwhile; this run's copy was not kept") from None
            raise CurateError(f"{target}: could not be put in place ({exc.strerror}); nothing of this run was kept") from None
    finally:
        if tmp_path.exists():
            shutil.rmtree(tmp_path, ignore_errors=True)


def read_parquet_table(path: str | os.PathLike, what: str, error: type[Exception] | None = None):
    """Read a Parquet file as a pyarrow Table, or raise one line naming the file and ``what`` it should be."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.errors import CurateError

    error = error or CurateError
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such {what} file")
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise error(f"{path}: not a readable Parquet {what} ({exc})") from None


def refuse_foreign(path: str | os.PathLike) -> None:
    """Refuse to replace ``path`` unless it is a Parquet table curate wrote (a ``curate.*`` metadata key).

    Raises
    ------
    CurateError
        One line naming the file: a user's notes, a folder or another tool's table are never overwritten.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    try:
        ours = path.is_file() and any(k.startswith(b"curate.") for k in (pq.read_schema(path).metadata or {}))
    except (pa.ArrowInvalid, OSError):
        ours = False
    if not ours:
        raise CurateError(f"{path}: exists and is not a table curate wrote; not overwritten (give a new path)")


def write_parquet_table(frame, path: str | os.PathLike, key: bytes, record: dict) -> Path:
    """Write a DataFrame atomically as Parquet, with ``record`` as JSON under metadata ``key``.

    An existing file is replaced only when curate wrote it (:func:`refuse_foreign`).
    """
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    refuse_foreign(path)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[key] = json.dumps(record, sort_keys=True, default=str).encode()
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)
    return path


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
