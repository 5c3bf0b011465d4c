"""Read a DKIM public key from any form PMG or an admin has it in, and check it.

Accepted: base64 of the DER SubjectPublicKeyInfo, a PEM public key, or the record text PMG prints
(`pmgconfig dkim_record`: `SEL._domainkey IN TXT ( "v=DKIM1; h=sha256; k=rsa; " "p=..." )`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ..core.errors import DkimKeyError

__all__ = ["DkimKey", "DkimKeyError", "from_file_text", "from_pem", "from_record_text",
           "from_spki_base64", "parse_tags", "strength_problem"]


@dataclass(frozen=True)
class DkimKey:
    """A checked DKIM public key: algorithm (`rsa` or `ed25519`), the `p=` value, and its size."""

    algorithm: str
    p: str
    bits: int
    selector_in_record: str | None = None

    @property
    def txt_value(self) -> str:
        """The TXT value published at SELECTOR._domainkey, unsplit."""
        if self.algorithm == "rsa":
            return f"v=DKIM1; h=sha256; k=rsa; p={self.p}"
        return f"v=DKIM1; k=ed25519; p={self.p}"


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_SELECTOR = re.compile(r"^\s*([A-Za-z0-9_.-]+?)\._domainkey\b", re.IGNORECASE)


def _b64decode(text: str, what: str) -> bytes:
    compact = re.sub(r"\s+", "", text)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise DkimKeyError(f"{what} is not valid base64") from None


def _from_public_key(key: object) -> DkimKey:
    if isinstance(key, rsa.RSAPublicKey):
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return DkimKey("rsa", base64.b64encode(der).decode("ascii"), key.key_size)
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return DkimKey("ed25519", base64.b64encode(raw).decode("ascii"), 256)
    raise DkimKeyError("the key is neither RSA nor Ed25519, the only DKIM key types (RFC 8463)")


def from_spki_base64(text: str) -> DkimKey:
    """A base64 DER SubjectPublicKeyInfo (white space ignored)."""
    der = _b64decode(text, "the public key")
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        raise DkimKeyError(
            "the base64 does not decode to a DER SubjectPublicKeyInfo public key"
        ) from None
    return _from_public_key(key)


def from_pem(text: str) -> DkimKey:
    """A PEM public key (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`)."""
    if "PRIVATE KEY" in text:
        raise DkimKeyError(
            "this is a PRIVATE key; give the public key (`openssl pkey -pubout`), "
            "and keep the private key off the repository"
        )
    try:
        key = serialization.load_pem_public_key(text.encode("ascii", "replace"))
    except (ValueError, TypeError):
        raise DkimKeyError("the PEM block is not a readable public key") from None
    return _from_public_key(key)


def parse_tags(value: str) -> dict[str, str]:
    """Split a DKIM/DMARC style tag list (`a=b; c=d`) into a dict of lower-case tag names."""
    tags: dict[str, str] = {}
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, val = part.partition("=")
        if not sep:
            raise DkimKeyError("it is not a DKIM key record: a part of it is not a tag=value "
                               "pair (the value is not shown)")
        tags[name.strip().lower()] = re.sub(r"\s+", "", val)
    return tags


def from_record_text(text: str) -> DkimKey:
    """The record text PMG shows, with or without the owner name and `( "..." "..." )` chunks."""
    selector = None
    m = _SELECTOR.match(text)
    if m:
        selector = m.group(1).lower()
    chunks = _QUOTED.findall(text)
    value = "".join(chunks) if chunks else text.strip()
    tags = parse_tags(value)
    if "v" in tags and tags["v"] != "DKIM1":
        shown = (f"`{tags['v']}`" if re.fullmatch(r"[A-Za-z0-9]{1,10}", tags["v"])
                 else "another value (not shown)")
        raise DkimKeyError(f"the record's v= is {shown}, not DKIM1")
    if "p" not in tags:
        raise DkimKeyError("the record has no p= tag (the public key)")
    if tags["p"] == "":
        raise DkimKeyError("the record's p= is empty, which means a revoked key")
    algorithm = tags.get("k", "rsa").lower()
    if algorithm == "rsa":
        key = from_spki_base64(tags["p"])
        if key.algorithm != "rsa":
            raise DkimKeyError("k=rsa but p= holds an Ed25519 key")
    elif algorithm == "ed25519":
        raw = _b64decode(tags["p"], "the p= value")
        if len(raw) != 32:
            raise DkimKeyError("an Ed25519 p= value must be 32 bytes (RFC 8463)")
        key = DkimKey("ed25519", base64.b64encode(raw).decode("ascii"), 256)
    else:
        shown = (f"k={algorithm}" if re.fullmatch(r"[a-z0-9-]{1,10}", algorithm)
                 else "its k= (the value is not shown)")
        raise DkimKeyError(f"{shown} is not a DKIM key type; use rsa or ed25519")
    return DkimKey(key.algorithm, key.p, key.bits, selector)


def from_file_text(text: str) -> DkimKey:
    """A key file: a PEM public key, or a file holding PMG's record text."""
    if "-----BEGIN" in text:
        return from_pem(text)
    return from_record_text(text)


def strength_problem(key: DkimKey) -> tuple[str, str] | None:
    """('error'|'warning', message) when the key is too weak (RFC 8301), else None."""
    if key.algorithm != "rsa":
        return None
    if key.bits < 1024:
        return ("error", f"the RSA key has {key.bits} bits; verifiers reject keys below "
                         "1024 bits (RFC 8301): generate a 2048-bit key in PMG")
    if key.bits < 2048:
        return ("warning", f"the RSA key has {key.bits} bits; 2048 is the recommended minimum "
                           "(RFC 8301)")
    return None


@dataclass(frozen=True)
class Dkim:
    """`site.dkim`: the selector PMG signs with and its key, the next key, retired selectors."""

    selector: str
    key: DkimKey
    retired_selectors: tuple[str, ...] = ()
    next_selector: str | None = None
    next_key: DkimKey | None = None

    def published(self) -> list[tuple[str, DkimKey]]:
        """(selector, key) of every key published in each domain."""
        out = [(self.selector, self.key)]
        if self.next_selector and self.next_key:
            out.append((self.next_selector, self.next_key))
        return out
