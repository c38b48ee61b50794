"""The file store's contact with the file system: a checked directory and private files.

Everything the file store opens goes through :func:`open_private`: relative to a directory file
descriptor (so a renamed or swapped directory path cannot redirect it), without following
symlinks, mode 0600, and refused unless it is a regular file owned by us with one link. The
directory itself is created 0700 on first use; an existing one must be ours, not a symlink and
not writable by group or others, or every operation raises :class:`StoreError` naming it.
"""

from __future__ import annotations

import errno
import logging
import os
import stat

from ..._errors import StoreError
from ..._log import logger as _seawall_logger  # noqa: F401  # the NullHandler
from .._base import StoreUnavailableError

__all__ = [
    "LOG",
    "MAX_SET_ASIDE",
    "open_dir",
    "open_private",
    "remote_fs_type",
    "set_aside",
]

LOG = logging.getLogger("seawall.stores")

#: Copies of unreadable records kept per file (``<file>.corrupt-1`` .. ``-N``); more are dropped.
MAX_SET_ASIDE = 5

_FILE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Refusals no retry can cure (unlike EMFILE, ENOSPC or EIO): a configuration error, raised.
_REFUSED = (errno.EACCES, errno.EPERM, errno.EROFS)
# File systems where flock is emulated, per-client, or held by a server after a crash.
_REMOTE = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre")


def open_dir(path: str) -> int:
    """Create ``path`` (0700) if needed, check it, and return a descriptor for it.

    A directory that cannot be created (or its parents) raises :class:`StoreError`: no
    retry would ever succeed, so the policy must not fall back to degraded mode.
    """
    created = _make_dir(path)
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise StoreError(f"file store directory {path!r} is a symlink: refusing it") from exc
        raise StoreError(f"cannot open the file store directory {path!r}: {exc}") from exc
    try:
        if created:
            os.fchmod(fd, 0o700)  # whatever the umask took away
        _check_dir(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _make_dir(path: str) -> bool:
    """Create ``path`` 0700 (its missing parents with the default mode); True if it is new."""
    try:
        os.mkdir(path, 0o700)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError:
        pass  # a parent is missing
    except OSError as exc:
        raise _cannot_create(path, exc) from exc
    # Create the parents, then try once more: a second "not found" means the path can never
    # exist (under /proc, say), and calling ourselves again would recurse forever.
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as exc:
        raise _cannot_create(path, exc) from exc
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return False  # another process made it meanwhile
    except FileNotFoundError as exc:
        parent = os.path.dirname(path)
        raise _cannot_create(path, exc, f"{parent!r} exists but cannot hold it") from exc
    except OSError as exc:
        raise _cannot_create(path, exc) from exc
    return True


def _cannot_create(path: str, exc: OSError, why: str = "") -> StoreError:
    if not why and exc.filename and exc.filename != path:
        why = f"at {exc.filename!r}"
    return StoreError(
        f"cannot create the file store directory {path!r}: {exc.strerror or exc}"
        + (f" ({why})" if why else "")
    )


def _check_dir(path: str, st: os.stat_result) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"file store path {path!r} is not a directory")
    if st.st_uid != os.geteuid():
        raise StoreError(
            f"file store directory {path!r} belongs to uid {st.st_uid}, not to us "
            f"(uid {os.geteuid()}): refusing to share state through it"
        )
    if st.st_mode & 0o022:
        raise StoreError(
            f"file store directory {path!r} is writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):o}): chmod it to 0700"
        )


def open_private(dir_fd: int, name: str, where: str) -> int:
    """Open (creating 0600) the regular file ``name`` in the directory; never via a symlink."""
    try:
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreError(f"{where}/{name} is a symlink: refusing to follow it") from exc
        if exc.errno in _REFUSED:
            raise StoreError(
                f"cannot open {where}/{name}: {exc.strerror}; the store directory must let "
                "this process create and write files"
            ) from exc
        raise StoreUnavailableError(f"cannot open {where}/{name}: {exc}") from exc
    try:
        st = os.fstat(fd)
        problem = _file_problem(st)
        if problem:
            raise StoreError(f"{where}/{name} {problem}: refusing to use it")
        if stat.S_IMODE(st.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _file_problem(st: os.stat_result) -> str:
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != os.geteuid():
        return f"belongs to uid {st.st_uid}, not to us"
    if st.st_nlink != 1:
        return f"has {st.st_nlink} links (expected 1)"
    return ""


def set_aside(dir_fd: int, name: str, data: bytes) -> str | None:
    """Copy unreadable bytes to ``<name>.corrupt-<n>``; return that name, or None if full."""
    for n in range(1, MAX_SET_ASIDE + 1):
        copy = f"{name}.corrupt-{n}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(copy, flags, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            continue
        except OSError:
            return None
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return copy
    return None


def remote_fs_type(path: str, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The file system type of ``path`` if it is a network or FUSE one, else None."""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return None
    best, fstype = "", ""
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or not rfields:
            continue
        mount = fields[4].replace("\\040", " ")
        inside = path == mount or path.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best):
            best, fstype = mount, rfields[0]
    if fstype in _REMOTE or fstype.startswith("fuse"):
        return fstype
    return None
