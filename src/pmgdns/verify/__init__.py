"""What the world answers, checked against the spec: the probe, the run, SMTP, policy, TLSA."""
