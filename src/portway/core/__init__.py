"""Pieces shared by every app: errors, field validators, the API instance."""
