"""Every typed error pmgdns reports, and the exit codes the command line maps them to.

The CLI catches `PmgdnsError` and prints its message as one paragraph; the exit code comes from
the error's `exit_code`. Nothing else in pmgdns decides an exit code.
"""

from __future__ import annotations

from enum import IntEnum

from octodns.processor.base import ProcessorException


class ExitCode(IntEnum):
    """The exit codes of spec-v1 §4."""

    OK = 0  # success; for plan: no changes
    ERROR = 1  # any error: bad spec, provider failure, conflict, stale plan, usage
    CHANGES = 2  # only with --detailed-exitcode: success, changes present


class PmgdnsError(Exception):
    """Base class of every error pmgdns reports to the user (exit code 1)."""

    exit_code: ExitCode = ExitCode.ERROR


class SpecError(PmgdnsError):
    """The spec (or a file it names) is wrong: names the file, the key path and the line."""

    def __init__(self, file: str, path: str, message: str, line: int | None = None) -> None:
        self.file = file
        self.path = path
        self.line = line
        self.message = message
        where = file if line is None else f"{file}, line {line}"
        key = f"{path}: " if path else ""
        super().__init__(f"{where}: {key}{message}")

    def __reduce__(self) -> tuple[type[SpecError], tuple[str, str, str, int | None]]:
        return (SpecError, (self.file, self.path, self.message, self.line))


class UsageError(PmgdnsError):
    """A command-line option or argument is wrong."""


class ConflictError(PmgdnsError):
    """A record pmgdns must publish collides with a foreign record (e.g. a CNAME)."""


class ProviderError(PmgdnsError):
    """A provider refused or failed; nothing further was applied."""


class PlanFailure(ProviderError):
    """Planning or applying failed at one target for one zone."""

    def __init__(self, message: str, zone: str, target: str) -> None:
        super().__init__(message)
        self.zone = zone
        self.target = target

    def __reduce__(self) -> tuple[type[PlanFailure], tuple[str, str, str]]:
        return (PlanFailure, (str(self), self.zone, self.target))


class StalePlanError(PmgdnsError):
    """A reviewed plan file no longer matches the spec or the targets."""


class PlanFileError(PmgdnsError):
    """A plan file is missing, unreadable or not a pmgdns plan."""


class UnsafePlanError(PmgdnsError):
    """octoDNS's safety thresholds refuse the plan; --force is the way past them."""


class StaleZonesError(PmgdnsError):
    """zones/ does not match what the spec renders to."""


class LockError(PmgdnsError):
    """Another apply holds the lock of this checkout."""


class NotConfirmed(PmgdnsError):
    """apply was not confirmed (no terminal to ask on, or the answer was not `yes`)."""


class Interrupted(PmgdnsError):
    """The run was interrupted (Ctrl-C); the message says what was applied before."""


class FileProblem(PmgdnsError):
    """A file pmgdns reads or writes is not usable (a FIFO, too large, not writable, ...)."""


class VerifyError(PmgdnsError):
    """verify could not run (e.g. the name server does not answer)."""


class InternalError(PmgdnsError):
    """A pmgdns bug: an invariant did not hold. The message says what to report."""


class OwnershipConflict(ProcessorException):  # type: ignore[misc]
    """A foreign record stands where pmgdns must publish (a CNAME). Raised inside the octoDNS
    processor, so it is an octoDNS ProcessorException; the engine reports it as a ConflictError."""


class ClassNotAllowed(ValueError):
    """A provider class path is not an octoDNS provider or source of an installed package."""


class DkimKeyError(ValueError):
    """A text is not a usable DKIM public key. The message never repeats the key."""


class TransportError(PmgdnsError):
    """An SMTP/HTTPS check could not run as asked (a bad --resolve, an unreadable --ca-file, a
    policy that cannot be fetched)."""


class SpecEditError(PmgdnsError):
    """`pmg pull` cannot edit the spec safely; nothing was written."""


class PmgError(PmgdnsError):
    """The Proxmox Mail Gateway's API refused or failed."""


class PmgTlsError(PmgError):
    """PMG's certificate did not verify (or did not match the pinned fingerprint)."""


class PmgAuthError(PmgError):
    """PMG refused the login or the permission."""


class PmgConnectionError(PmgError):
    """PMG could not be reached."""
