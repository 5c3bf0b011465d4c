"""Certificate and public-key files, as the spec names them for TLSA (`cert_file`): the DER
SubjectPublicKeyInfo and its SHA-256 (`3 1 1`, RFC 7672), without echoing the input."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from ..core.errors import TransportError

if TYPE_CHECKING:
    from cryptography import x509

# --- DANE TLSA: the SubjectPublicKeyInfo digest ----------------------------------------------

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL
)
_PRIVATE = (
    "this is a private key: give the certificate or the public key instead "
    "(the private key never needs to leave the gateway)"
)
_NOT_A_KEY = "not a certificate or public key (PEM or DER)"


def _der_children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """The DER elements between start and end: (tag, offset of the element, offset after it)."""
    i = start
    while i < end:
        if i + 2 > end:
            raise ValueError("truncated DER")
        tag, length, head = data[i], data[i + 1], i + 2
        if tag & 0x1F == 0x1F:
            raise ValueError("high-tag-number form")
        if length & 0x80:
            n = length & 0x7F
            if not 1 <= n <= 4 or head + n > end:
                raise ValueError("bad DER length")
            length = int.from_bytes(data[head:head + n], "big")
            head += n
        if head + length > end:
            raise ValueError("truncated DER")
        yield tag, i, head + length
        i = head + length


def _der_contents(data: bytes, start: int, end: int) -> tuple[int, int]:
    """Start and end of the contents of the single constructed element data[start:end]."""
    length = data[start + 1]
    head = start + 2 + (length & 0x7F if length & 0x80 else 0)
    return head, end


def cert_spki(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo exactly as encoded in it (not re-encoded: TLSA hashes
    the bytes on the wire)."""
    tbs = cert.tbs_certificate_bytes
    [(tag, start, end)] = list(_der_children(tbs, 0, len(tbs)))
    if tag != 0x30:
        raise ValueError("TBSCertificate is not a SEQUENCE")
    fields = list(_der_children(tbs, *_der_contents(tbs, start, end)))
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    tag, start, end = fields[5]
    if tag != 0x30:
        raise ValueError("subjectPublicKeyInfo is not a SEQUENCE")
    return tbs[start:end]


def _is_spki(der: bytes) -> bool:
    """Whether der is one SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }."""
    try:
        [(tag, start, end)] = list(_der_children(der, 0, len(der)))
        if tag != 0x30 or end != len(der):
            return False
        inner = [t for t, _, _ in _der_children(der, *_der_contents(der, start, end))]
    except ValueError:
        return False
    return inner == [0x30, 0x03]


def _public_key_spki(der: bytes) -> bytes:
    """DER of a public key (SubjectPublicKeyInfo, or PKCS#1 RSA) -> its SubjectPublicKeyInfo."""
    if _is_spki(der):
        try:
            serialization.load_der_public_key(der)
        except UnsupportedAlgorithm:
            pass  # a well-formed SPKI of an algorithm cryptography lacks still has a digest
        return der  # hashed as given, like the SPKI inside a certificate
    key = serialization.load_der_public_key(der)  # ValueError when it is no public key
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _is_der_private_key(der: bytes) -> bool:
    try:
        serialization.load_der_private_key(der, password=None)
    except TypeError:
        return True  # encrypted: cryptography asks for the password, so it is a private key
    except Exception:  # noqa: BLE001 - any other failure means "not a private key"
        return False
    return True


def spki_sha256(pem_or_der: bytes) -> str:
    """The TLSA `3 1 1` value of a certificate or public key: the lowercase hex SHA-256 of its DER
    SubjectPublicKeyInfo. Takes PEM (the first certificate of a chain file is the leaf) or DER.
    Private keys are refused and the input is never repeated in an error."""
    # start-up time: X.509 parsing loads only when a certificate file is read
    from cryptography import x509
    data = bytes(pem_or_der)
    if b"-----BEGIN " in data:
        blocks = [(m.group(1).decode("ascii"), m.group(2)) for m in _PEM_BLOCK.finditer(data)]
        if b"PRIVATE KEY-----" in data or any("PRIVATE" in label for label, _ in blocks):
            raise TransportError(_PRIVATE)
        for label, body in blocks:
            if label not in ("CERTIFICATE", "X509 CERTIFICATE", "PUBLIC KEY", "RSA PUBLIC KEY"):
                continue
            try:
                der = base64.b64decode(b"".join(body.split()), validate=True)
                if label.endswith("CERTIFICATE"):
                    spki = cert_spki(x509.load_der_x509_certificate(der))
                else:
                    spki = _public_key_spki(der)
            except (ValueError, binascii.Error, UnsupportedAlgorithm):
                raise TransportError(f"{_NOT_A_KEY}: its {label} block does not decode") from None
            return hashlib.sha256(spki).hexdigest()
        raise TransportError(f"{_NOT_A_KEY}: no CERTIFICATE or PUBLIC KEY block")
    try:
        return hashlib.sha256(cert_spki(x509.load_der_x509_certificate(data))).hexdigest()
    except ValueError:
        pass
    try:
        return hashlib.sha256(_public_key_spki(data)).hexdigest()
    except (ValueError, UnsupportedAlgorithm):
        pass
    if _is_der_private_key(data):
        raise TransportError(_PRIVATE)
    raise TransportError(_NOT_A_KEY)

