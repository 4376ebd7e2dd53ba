"""The HTTP layer: routes, their schemas, the handlers between requests and compute, the wire formats,
middleware, security, and the mapping of errors to problem+json (docs/design/architecture.md)."""
