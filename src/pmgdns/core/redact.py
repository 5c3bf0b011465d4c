"""Keep secrets (values that came from env/VAR) out of every output, log and error.

A secret reaches a message in more forms than the one it was given in: a library quotes it
(`repr`), escapes it (JSON, `unicode_escape`), percent-encodes it (a URL), or strips it. Every
such form of every secret is masked.
"""

from __future__ import annotations

import json
import logging
import traceback
import urllib.parse
from collections.abc import Iterable

MASK = "[redacted]"
MIN_LENGTH = 4  # shorter values would mask ordinary text, and are not secrets worth the name
# A secret from env/VAR shorter than this is refused: masking it would garble every line holding
# those characters (a port number, a word) and, by where the mask lands, still reveal it.
SECRET_MIN_LENGTH = 8


def forms(secret: str) -> set[str]:
    """The forms in which `secret` may appear in a message."""
    out = {secret, secret.strip()}
    for s in list(out):
        out.add(repr(s)[1:-1])
        out.add(json.dumps(s)[1:-1])
        out.add(s.encode("unicode_escape").decode("ascii", "replace"))
        out.add(urllib.parse.quote(s, safe=""))
        out.add(urllib.parse.quote_plus(s, safe=""))
    return {f for f in out if len(f) >= MIN_LENGTH}


class Redactor:
    """Replace every known secret, in each of its forms, in a text by a mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self.add(secrets)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def add(self, secrets: Iterable[str]) -> None:
        # longest first, so a secret containing another is masked whole
        found = set(self.secrets)
        for s in secrets:
            if s:
                found.update(forms(s))
        self.secrets = sorted(found, key=len, reverse=True)


class RedactingFilter(logging.Filter):
    """A logging filter that renders each record and masks secrets in it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redactor.secrets:
            record.msg = self.redactor(record.getMessage())
            record.args = None
            if record.exc_info:
                record.msg += "\n" + self.redactor(
                    "".join(traceback.format_exception(*record.exc_info)))
                record.exc_info = None
                record.exc_text = None
        return True
