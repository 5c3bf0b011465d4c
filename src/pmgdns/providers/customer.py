"""The built-in `customer` target (spec-v1 §7.2): a zone the customer's own DNS host holds, where
pmgdns has no credentials.

pmgdns never plans or applies at it: `pmgdns plan` lists the zone's records in its `manual` list
(kind `customer`) and `pmgdns customer-ticket` writes the request for the customer's DNS host.
For `octodns-sync --config-file build/octodns.yaml`, which knows nothing of that, this provider
holds nothing and applies nothing, so the sync never touches a customer's zone.
"""

from __future__ import annotations

import logging
from typing import Any

from octodns.provider.base import BaseProvider


class CustomerProvider(BaseProvider):  # type: ignore[misc]
    """Holds nothing, applies nothing (see the module docstring)."""

    SUPPORTS_GEO = False
    SUPPORTS_DYNAMIC = False
    SUPPORTS = frozenset(("A", "AAAA", "CAA", "CNAME", "MX", "TLSA", "TXT"))

    def __init__(self, id: str, *args: Any, **kwargs: Any) -> None:
        self.log = logging.getLogger(f"CustomerProvider[{id}]")
        super().__init__(id, *args, **kwargs)

    def populate(self, zone: Any, target: bool = False, lenient: bool = False) -> bool:
        return False

    def _apply(self, plan: Any) -> None:
        self.log.warning("%s is held by the customer: nothing applied; `pmgdns customer-ticket` "
                         "writes the request for their DNS host", plan.desired.name)
