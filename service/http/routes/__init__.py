"""One router per resource: route functions and their OpenAPI extras, nothing else."""
