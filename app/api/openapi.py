"""OpenAPI document for /api/v1."""
