"""What every stage shares: typed errors, bounded file I/O, redaction, safe text, quiet imports."""
