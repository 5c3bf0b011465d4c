"""Keep what pmgdns generates out of git: `build/` (the local target's zone files, plan files,
the octoDNS configuration, the apply lock) goes into `.gitignore`, appended, never rewriting a
line that is there. The spec and `zones/` are what a repository commits."""

from __future__ import annotations

import os

from .files import MiB, append_text, read_text

COMMENT = "# pmgdns: generated files (commit config/ and zones/, not these)"


def pattern(build_dir: str) -> str | None:
    """The `.gitignore` line for `build_dir` (relative to the directory of `.gitignore`), or
    None when it lies elsewhere (an absolute path, or above)."""
    norm = os.path.normpath(build_dir)
    if os.path.isabs(norm) or norm == "." or norm.split(os.sep)[0] == "..":
        return None
    return f"/{norm.replace(os.sep, '/')}/"


def ignored(text: str, line: str) -> bool:
    """Does `text` (a .gitignore) already have `line`, in any of its usual spellings?"""
    bare = line.strip("/")
    spellings = {bare, f"{bare}/", f"/{bare}", f"/{bare}/", f"{bare}/*", f"/{bare}/*",
                 f"{bare}/**", f"/{bare}/**"}
    return any(t.strip() in spellings for t in text.splitlines())


def ensure_ignored(path: str, build_dir: str) -> str | None:
    """Append the line for `build_dir` to the `.gitignore` at `path` (creating it) unless it is
    there; the line added, or None. FileProblem when the file cannot be read or appended to."""
    line = pattern(build_dir)
    if line is None:
        return None
    try:
        text = read_text(path, MiB, ".gitignore")
    except FileNotFoundError:
        text = ""
    if ignored(text, line):
        return None
    head = "\n" if text and not text.endswith("\n") else ""
    gap = "\n" if text.strip() else ""
    append_text(path, f"{head}{gap}{COMMENT}\n{line}\n", "the build/ line")
    return line

