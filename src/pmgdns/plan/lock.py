"""One `pmgdns apply` at a time per checkout."""

from __future__ import annotations

import fcntl
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.errors import LockError


def _open(path: str) -> int:
    """The lock file, opened without following a symlink, and only if it is a regular file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        raise LockError(f"cannot use the apply lock {path}: {exc.strerror} (it must be a "
                        "regular file pmgdns may write, not a symlink); remove it and run "
                        "again. Nothing was applied.") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LockError(f"cannot use the apply lock {path}: it is not a regular file; remove it "
                        "and run again. Nothing was applied.")
    return fd


@contextmanager
def apply_lock(build_dir: str, wait: float = 0.0) -> Iterator[None]:
    """Hold `build_dir/apply.lock`; wait up to `wait` seconds for another apply to finish."""
    path = os.path.join(build_dir, "apply.lock")
    try:
        os.makedirs(build_dir, exist_ok=True)
    except OSError as exc:
        raise LockError(f"cannot create {build_dir}/ for the apply lock: {exc.strerror}. "
                        "Nothing was applied.") from None
    fd = _open(path)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                    who = (f"PID {holder}, lock {path}" if holder.isdigit() else
                           f"lock {path}, which names no PID yet")
                    raise LockError(
                        f"another pmgdns apply is running in this checkout ({who}); wait for "
                        "it to finish, or pass --lock-timeout SECONDS to wait. Nothing was "
                        "applied.") from None
                time.sleep(0.2)
        try:  # the holder's PID, for the message of an apply that has to wait
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)
