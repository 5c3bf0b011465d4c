"""Values from a spec, a DNS answer or a provider are data: before any of them reaches a terminal
or a Markdown comment, the characters that could act instead of show (control characters such
as ESC, bidirectional overrides, line separators) are written as visible escapes."""

from __future__ import annotations

import unicodedata

_ACTING = ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")


def visible(text: str, newlines: bool = False) -> str:
    """`text` with every acting character escaped (`\\x1b`, `\\u202e`); with `newlines`, line
    feeds are kept (for multi-line messages)."""
    if text.isprintable() and text.isascii():
        return text
    out = []
    for ch in text:
        if newlines and ch == "\n":
            out.append(ch)
        elif unicodedata.category(ch) in _ACTING:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 warning`, `2 warnings`, `0 warnings`; `many` for an irregular plural."""
    return f"{n} {word if n == 1 else many or word + 's'}"
