"""TLS certificates: uploaded (custom) and ACME-issued."""
