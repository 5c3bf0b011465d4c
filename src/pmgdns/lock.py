"""One `pmgdns apply` at a time per checkout."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import LockError


@contextmanager
def apply_lock(build_dir: str, wait: float = 0.0) -> Iterator[None]:
    """Hold `build_dir/apply.lock`; wait up to `wait` seconds for another apply to finish."""
    os.makedirs(build_dir, exist_ok=True)
    path = os.path.join(build_dir, "apply.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise LockError(
                        f"another pmgdns apply is running in this checkout (PID {holder}, lock "
                        f"{path}); wait for it to finish, or pass --lock-timeout SECONDS to "
                        "wait. Nothing was applied.") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
