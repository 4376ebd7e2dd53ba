"""The HTTP layer: routes, schemas and the mapping of errors to problem+json."""
