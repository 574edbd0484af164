"""Test support: real nginx, real upstreams, real certificates, shared fixtures."""
