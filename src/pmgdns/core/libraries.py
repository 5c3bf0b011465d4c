"""Third-party libraries imported without their warnings reaching the user.

A library may warn about itself when it is imported: dnspython's DSA module under a newer
`cryptography` (a `CryptographyDeprecationWarning` with a site-packages path), reached through
checkdmarc. The user cannot act on it, so pmgdns catches such warnings where it imports the
library, not process-wide, and keeps them for `-vv` (logged at DEBUG by `pmgdns.libraries`).
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("pmgdns.libraries")

# What libraries said while being imported, for `-vv` (its logging may start after the import)
HELD: list[str] = []

_LOCK = threading.Lock()


@contextmanager
def quiet_import(library: str) -> Iterator[None]:
    """Import `library` (a top-level module name) in the `with` block, holding its warnings."""
    if library in sys.modules:  # loaded once per process; later imports warn no more
        yield
        return
    with _LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = (f"{library} warned while being imported: {w.category.__name__}: {w.message} "
                f"({w.filename}:{w.lineno})")
        HELD.append(text)
        log.debug("%s", text)
