"""pmgdns: a mail gateway's DNS from a spec through octoDNS; the data path is the package list:
core, spec, families, zones, plan, verify, reports, tickets (see the README's layout)."""

__version__ = "0.1.0"
