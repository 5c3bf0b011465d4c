"""The gateway as the source of truth: PMG's API client and the spec edit of `pmg pull`."""
