"""API keys and roles, rate limits, signed problems and attempt counts."""
