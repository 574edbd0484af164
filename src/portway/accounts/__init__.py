"""Users, sessions, API tokens and permissions."""
