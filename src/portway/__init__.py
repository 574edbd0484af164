"""Portway: a self-hosted reverse-proxy manager that drives nginx."""

__version__ = "0.1.0"
