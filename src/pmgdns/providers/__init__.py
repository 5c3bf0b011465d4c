"""octoDNS providers that pmgdns runs in place of (or beside) the ones a spec names.

`build/octodns.yaml` names these classes, so bare `octodns-sync` runs them too.
"""
