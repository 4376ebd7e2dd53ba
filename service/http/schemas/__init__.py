"""The pydantic models of requests and responses, their TypeAdapters and OpenAPI descriptions."""
