"""Output files that never lose data, zstd's behaviour the reference.

A result is written to a temporary file beside its destination (``.NAME.PID.XXXXXXXX.part``),
flushed, then published in one step, so a reader sees the whole file or nothing. Without
``force`` it is published by a hard link, which fails if another process published first: two
runs into one name never silently clobber each other. An existing destination that is not a
regular file is never replaced: a character device (``/dev/null``) or a FIFO is written
through, a symbolic link or anything else is refused. The pid in the temporary name lets a
later run remove what a killed one left (a live process's file is never touched).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import sys
from pathlib import Path

from dulzip.errors import UsageError

PART = ".part"
NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}  # link() cannot here
_TAIL = re.compile(r"(\d+)\.[0-9a-f]{8}")  # PID.XXXXXXXX: exactly, so that other outputs' files never match


def same_file(name: str, out: Path) -> bool:
    """Whether ``out`` is the input ``name`` itself (the same inode: a hard link or symbolic
    link included). Writing it would destroy the input before it is read, and ``--rm`` then
    deletes the result; a character device (``/dev/null`` in and out) loses nothing."""
    try:
        a, b = os.stat(name), os.stat(out)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) and not stat.S_ISCHR(b.st_mode)


def writes_through(path: Path, force: bool) -> bool:
    """Check ``path`` before any work: True if it is written through (an existing character
    device or FIFO, also behind a symbolic link such as /dev/stdout: opened and written, never
    replaced, no ``force`` needed, as zstd does), False if it is created or, with ``force``,
    atomically replaced (missing, or a regular file). Anything else raises UsageError: a
    regular file without ``force``, a directory, a symbolic link to anything but a device or
    FIFO (never followed: replacing it would lose the link, writing its target may write
    where the user never meant to, as a link planted in a shared folder would), a block device
    or socket."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(mode):
        with contextlib.suppress(OSError):
            mode = os.stat(path).st_mode
        if _through(mode):
            return True
        raise UsageError(f"{path} already exists and is a symbolic link; not replaced")
    if _through(mode):
        return True
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path} is a directory")
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path} is not a regular file; not replaced")
    if not force:
        raise UsageError(f"{path} already exists (use -f to overwrite)")
    return False


def _through(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


@contextlib.contextmanager
def atomic_output(path: Path | None, force: bool, like: str | Path | os.stat_result | None = None):
    """A binary file that becomes ``path`` only when the block completes: never a partial
    file, whatever ends the block (an error, Ctrl-C, SIGTERM turned into an exception). None:
    standard output. A device or FIFO is written through (see ``writes_through``).
    ``like``: a regular file (or its stat) whose permission bits, times and (where allowed)
    owner the new file takes before it is published, as gzip, xz and zstd do (see :func:`copy_metadata`)."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    if writes_through(path, force):
        with _open_through(path) as f:
            yield f
        return
    remove_stale(path)
    tmp, f = _create_temp(path)
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if like is not None:
            copy_metadata(like, tmp)
        _publish(tmp, path, force)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def copy_metadata(source: str | Path | os.stat_result, target: Path) -> None:
    """Give ``target`` the permission bits (setuid, setgid and sticky included), access and
    modification times (to the nanosecond) and, where the process may, the owner and group of
    ``source`` (a path, or its ``os.stat`` taken before it was read: reading changes its access
    time): an executable comes back executable, ``make`` and backups see the original's time.
    Only for a regular ``source`` (standard input has none of it to give). The owner first:
    chown clears the setuid bit, chmod then restores it."""
    try:
        st = source if isinstance(source, os.stat_result) else os.stat(source)
    except OSError:
        return
    if not stat.S_ISREG(st.st_mode):
        return
    with contextlib.suppress(OSError):  # only root (or the owner, for the group) may
        os.chown(target, st.st_uid, st.st_gid)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


class Counted:
    """A file that counts the bytes written to it (the size of a device or pipe says nothing)."""

    def __init__(self, f):
        self.f, self.n = f, 0

    def write(self, data) -> int:
        self.n += memoryview(data).nbytes
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)


def _open_through(path: Path):
    """Open an existing device or FIFO for writing: no O_CREAT and no O_TRUNC, so that if
    the node went away meanwhile nothing is created, and a regular file swapped in is refused."""
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
    if not _through(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{path} changed while opening; not written")
    return os.fdopen(fd, "wb")


def _create_temp(path: Path):
    """``.NAME.PID.XXXXXXXX.part`` beside ``path``, created exclusively (mode 0600). The file
    object's ``name`` is that path (a caller reopens it to verify what it wrote)."""
    directory = path.parent if str(path.parent) else Path(".")
    while True:
        tmp = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{PART}"
        try:
            return tmp, open(tmp, "xb", opener=lambda p, flags: os.open(p, flags, 0o600))
        except FileExistsError:
            continue


def _publish(tmp: Path, path: Path, force: bool) -> None:
    """Give the complete ``tmp`` its final name. ``force``: replace (rename, atomic), unless
    the destination became something other than a regular file meanwhile. Else a hard link,
    which fails if the name exists (another process published first); where the filesystem
    has no hard links, the name is reserved by an exclusive create and then replaced."""
    if force:
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISREG(os.lstat(path).st_mode):
                raise UsageError(f"{path} changed while writing; not replaced")
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise UsageError(f"{path} already exists (use -f to overwrite)") from None
    except OSError as e:
        if e.errno not in NO_LINKS:
            raise
        _reserve_then_replace(tmp, path)
        return
    os.unlink(tmp)


def _reserve_then_replace(tmp: Path, path: Path) -> None:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise UsageError(f"{path} already exists (use -f to overwrite)") from None
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)  # the empty reservation, ours
        raise


def remove_stale(path: Path) -> None:
    """Remove the temporary files of ``path`` that a killed run left (SIGKILL, a power cut
    gives no chance to clean): ``.NAME.PID.XXXXXXXX.part`` regular files whose process no
    longer exists. A live process's file, any user's, is kept; so is one whose pid was
    reused meanwhile (removed by a later run)."""
    directory = path.parent if str(path.parent) else Path(".")
    prefix = f".{path.name}."
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for n in names:
        m = _TAIL.fullmatch(n[len(prefix):-len(PART)]) if n.startswith(prefix) and n.endswith(PART) else None
        if m is None or _alive(int(m[1])):
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(directory / n).st_mode):
                os.unlink(directory / n)


def _alive(pid: int) -> bool:
    if pid <= 0 or os.name != "posix":  # kill(0), kill(-1): process groups; Windows: kill(pid, 0) is Ctrl-C
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's live process
        return True
    return True
