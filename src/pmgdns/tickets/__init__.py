"""Requests for whoever holds what pmgdns cannot change: the hoster's PTR."""
