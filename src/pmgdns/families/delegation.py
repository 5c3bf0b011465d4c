"""The delegation of each domain's zone (spec-v1 §7.3): the NS set the parent zone delegates D to
against the NS set D's target serves. Nothing is published and nothing is owned: the parent's
delegation lives at the registrar, so no failure here is fixed by `pmgdns apply`.

Checked once per zone, and only when the parent can be asked (`Probe.delegation`); otherwise
`verify` says once per run that the check was not made.
"""

from __future__ import annotations

from ..spec.model import Domain
from .base import Family
from .checking import FAIL, OK, WARN, Check, Delegation, Probe

NOT_APPLY = "apply cannot fix this: the delegation is made at the registrar"
CUSTOMER = "customer"


def _list(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names) or "nothing"


def delegation_check(d: Domain, view: Delegation, family: str = "delegation") -> Check:
    """One check: registered and delegated, answering, and to the servers of its target."""
    parent, ns = view.parent, view.parent_ns
    want = view.target_ns if view.target_ns is not None else view.served_ns
    wanted = _list(want or ())

    def check(status: str, message: str, fix: str = "") -> Check:
        return Check(d.name, family, "delegation", status, message,
                     f"{fix}; {NOT_APPLY}" if fix else "",
                     observed=_list(ns) if view.registered else
                     f"{'NXDOMAIN' if view.nxdomain else 'no delegation'} at {parent}",
                     expected=wanted if want else "")

    if not view.registered:
        how = "NXDOMAIN" if view.nxdomain else "it answers without NS records"
        return check(FAIL, f"{d.zone} is not registered or not delegated: {parent} has no "
                           f"delegation for it ({how}), so no sender finds its MX",
                     f"register {d.name} or delegate it at the registrar to "
                     f"{wanted if want else 'the name servers of its target'}")
    if CUSTOMER in d.targets:
        return check(OK, f"{parent} delegates {d.zone} to {_list(ns)} (a customer zone: "
                         "reported, not compared)")
    lame = dict(view.lame)
    elsewhere = (f"the world asks {_list(ns)}, the records were applied at {view.target}"
                 + (f" (NS {wanted})" if want else "")
                 if want is not None and set(want) != set(ns) else "")
    if ns and all(h in lame for h in ns):
        why = "; ".join(f"{h} {lame[h]}" for h in ns)
        return check(FAIL, f"lame delegation: {parent} delegates {d.zone} to {_list(ns)}, and "
                           f"none of them answers for it ({why})"
                           + (f"; {elsewhere}" if elsewhere else ""),
                     f"delegate {d.name} at the registrar to {wanted}" if want else
                     f"make {_list(ns)} serve {d.zone}, or delegate it to servers that do")
    if elsewhere:
        return check(FAIL, f"delegated elsewhere: {parent} delegates {d.zone} to {_list(ns)}; "
                           f"{elsewhere}",
                     f"delegate {d.name} at the registrar to {wanted}, or move its target to "
                     "the servers it is delegated to")
    if lame:
        why = "; ".join(f"{h} {w}" for h, w in lame.items())
        return check(WARN, f"part of the delegation of {d.zone} is lame: {why}",
                     "make those servers serve the zone, or remove them from the delegation "
                     "at the registrar")
    return check(OK, f"{parent} delegates {d.zone} to {_list(ns)}"
                     + (", the NS set its target serves" if want else ""))


class DelegationFamily(Family):
    name = "delegation"

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:
        view = probe.delegation(domain)
        return [] if view is None else [delegation_check(domain, view, self.name)]


FAMILY = DelegationFamily()
