"""The nginx data plane: config rendering, apply engine, process supervision, settings."""
