"""Keep secrets (values that came from env/VAR) out of every output, log and error."""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "[redacted]"


class Redactor:
    """Replace every known secret value in a text by a mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # longest first, so a secret containing another is masked whole; very short values would
        # mask ordinary text and are not secrets worth the name
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def add(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({*self.secrets, *(s for s in secrets if s and len(s) >= 4)},
                              key=len, reverse=True)


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
                import traceback

                record.msg += "\n" + self.redactor(
                    "".join(traceback.format_exception(*record.exc_info)))
                record.exc_info = None
                record.exc_text = None
        return True
