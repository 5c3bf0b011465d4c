"""The record families, one module each (see `base.py` for what a family declares).

To add a family: write its module with a `Family` subclass and `FAMILY = ...`, add it to
`FAMILIES` below, and give it tests. Spec, records, render, the processor, plan and verify
loop over this list; nothing else needs to know the family.
"""

from __future__ import annotations

from . import (
    caa,
    delegate,
    delegation,
    dkim,
    dmarc,
    dmarc_reports,
    dnsbl,
    dnssec,
    firewall,
    gateway,
    mta_sts,
    mx,
    parked,
    smtp,
    spf,
    tls_rpt,
    tlsa,
    wildcard_spf,
)
from .base import Family

FAMILIES: tuple[Family, ...] = (
    gateway.FAMILY,
    delegation.FAMILY,
    dnssec.FAMILY,
    mx.FAMILY,
    spf.FAMILY,
    wildcard_spf.FAMILY,
    dmarc.FAMILY,
    dkim.FAMILY,
    dmarc_reports.FAMILY,
    parked.FAMILY,
    mta_sts.FAMILY,
    tls_rpt.FAMILY,
    caa.FAMILY,
    tlsa.FAMILY,
    delegate.FAMILY,
    smtp.FAMILY,
    dnsbl.FAMILY,
    firewall.FAMILY,
)
gateway.FAMILY.families = FAMILIES  # a gateway node takes the node keys of every family


__all__ = ["FAMILIES", "Family"]
