"""What verify tells about a zone the customer's DNS host holds (spec-v1 §7.2).

`pmgdns apply` never writes there, so a record missing or wrong at D is pending at the customer:
the fix names the ticket (`pmgdns customer-ticket D`), not apply. The exception is a delegated
name whose CNAME is in place: what it points to lives in the delegate zone, which apply sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..families.checking import APPLY, OK, Check
from ..families.delegate import PENDING, delegate_of
from ..families.loader import CUSTOMER
from ..spec.model import Domain, Site

SUFFIX = " delegation"  # the delegate family's CNAME checks: "DKIM delegation", ...


def customer_fixes(site: Site, domain: Domain, checks: Sequence[Check]) -> list[Check]:
    """`checks` of `domain` with the fixes a customer zone needs (see the module docstring)."""
    if CUSTOMER not in domain.targets:
        return list(checks)
    cnames: dict[str, bool] = {}
    for c in checks:
        if c.family == "delegate" and c.check.endswith(SUFFIX):
            what = c.check[: -len(SUFFIX)]
            cnames[what] = cnames.get(what, True) and c.status == OK
    dg = delegate_of(site)
    pending = PENDING.format(domain=domain.name)
    out = []
    for c in checks:
        if APPLY not in c.fix or c.family == "delegate":
            out.append(c)
        elif cnames.get(c.check) and dg is not None:
            out.append(replace(c, fix=f"{APPLY} (the CNAME at {domain.name} is in place; the "
                                      f"record it points to is in {dg.zone})"))
        else:
            out.append(replace(c, fix=pending))
    return out


__all__ = ["customer_fixes"]
