"""Output formats in one place: plan and verify as text, markdown, JSON and HTML."""
