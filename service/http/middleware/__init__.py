"""ASGI middleware: the body limit, the /gradient fast path, HEAD, CORS with problem+json refusals."""
