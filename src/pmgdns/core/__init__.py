"""What every stage shares: typed errors, bounded file I/O, secret redaction, terminal-safe text."""
