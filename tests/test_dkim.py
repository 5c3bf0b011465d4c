"""DKIM keys in every form PMG or an admin has them."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from pmgdns.spec import dkim_keys as dkim

from .conftest import Keys


def test_base64_with_white_space(keys: Keys) -> None:
    b64 = keys.b64()
    folded = "\n  ".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    key = dkim.from_spki_base64(folded)
    assert (key.algorithm, key.bits, key.p) == ("rsa", 2048, b64)
    assert key.txt_value == f"v=DKIM1; h=sha256; k=rsa; p={b64}"


def test_pmg_record_text_with_chunks(keys: Keys) -> None:
    record = keys.pmg_record("pmg2026", "rsa4096")
    key = dkim.from_record_text(record)
    assert key.selector_in_record == "pmg2026"
    assert (key.bits, key.p) == (4096, keys.b64("rsa4096"))


def test_multiline_record_as_pasted(keys: Keys) -> None:
    p = "p=" + keys.b64()
    text = ('pmg2026._domainkey IN TXT ( "v=DKIM1; h=sha256; k=rsa; "\n'
            + "\n".join(f'  "{p[i:i + 250]}"' for i in range(0, len(p), 250)) + " )\n")
    assert dkim.from_record_text(text).p == keys.b64()


def test_bare_tag_list(keys: Keys) -> None:
    key = dkim.from_record_text(f"v=DKIM1; k=rsa; p={keys.b64()}")
    assert key.selector_in_record is None and key.bits == 2048


def test_pem_and_pkcs1_pem(keys: Keys) -> None:
    assert dkim.from_file_text(keys.pem()).p == keys.b64()
    pkcs1 = keys.rsa2048.public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.PKCS1).decode()
    assert dkim.from_file_text(pkcs1).p == keys.b64()


def test_ed25519_from_spki_and_record(keys: Keys) -> None:
    key = dkim.from_spki_base64(keys.b64("ed"))
    raw = keys.ed.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key.algorithm == "ed25519" and base64.b64decode(key.p) == raw
    assert key.txt_value == f"v=DKIM1; k=ed25519; p={key.p}"
    again = dkim.from_record_text(key.txt_value)
    assert again == key
    assert dkim.strength_problem(key) is None


@pytest.mark.parametrize("text,fragment", [
    ("v=DKIM1; p=", "revoked"),
    ("v=DKIM2; p=QUJD", "not DKIM1"),
    ("v=DKIM1; k=rsa", "no p= tag"),
    ("v=DKIM1; k=ed25519; p=QUJD", "32 bytes"),
    ("v=DKIM1; k=rsa; p=@@@", "not valid base64"),
    ("just words", "not a tag=value pair"),
])
def test_bad_records(text: str, fragment: str) -> None:
    with pytest.raises(dkim.DkimKeyError, match=fragment):
        dkim.from_record_text(text)


def test_strength(keys: Keys) -> None:
    assert dkim.strength_problem(dkim.from_spki_base64(keys.b64("rsa512")))[0] == "error"
    assert dkim.strength_problem(dkim.from_spki_base64(keys.b64("rsa1024")))[0] == "warning"
    assert dkim.strength_problem(dkim.from_spki_base64(keys.b64("rsa2048"))) is None
