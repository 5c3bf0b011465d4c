"""Typed errors. The CLI maps every one of them to exit code 1 and a one-paragraph message."""

from __future__ import annotations


class PmgdnsError(Exception):
    """Base class of every error pmgdns reports to the user (exit code 1)."""


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


class ConflictError(PmgdnsError):
    """A record pmgdns must publish collides with a foreign record (e.g. a CNAME)."""


class ProviderError(PmgdnsError):
    """A provider refused or failed; nothing further was applied."""


class StalePlanError(PmgdnsError):
    """A reviewed plan file no longer matches the spec or the targets."""


class UnsafePlanError(PmgdnsError):
    """octoDNS's safety thresholds refuse the plan; --force is the way past them."""


class StaleZonesError(PmgdnsError):
    """zones/ does not match what the spec renders to."""
