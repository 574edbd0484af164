"""Proxy hosts: domain names routed to an upstream through nginx."""
