"""The firewall of the PMG prerequisites (spec-v1 §6.3): the optional top-level `firewall:`
block. It publishes no records; `pmgdns firewall` renders it (see `pmgdns.firewall`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..firewall import Firewall, parse_firewall
from .base import Family

if TYPE_CHECKING:
    from ..checker import Checker


class FirewallFamily(Family):
    name = "firewall"
    top_keys = ("firewall",)

    def parse_top(self, c: Checker, top: Mapping[str, Any]) -> Firewall | None:
        if top.get("firewall") is None:
            return None
        return parse_firewall(top["firewall"], ("firewall",), c.fail, c.warn)


FAMILY = FirewallFamily()
