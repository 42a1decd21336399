"""Request bodies: documents in YAML or JSON, and their OpenAPI description."""

from __future__ import annotations

from fastapi import Request

from goship_ctl.documents import load_body


async def document(request: Request):
    """FastAPI dependency: the request body as one parsed document (not yet validated)."""
    return load_body(await request.body(), request.headers.get("content-type"))


def document_body(schema_name: str) -> dict:
    """``openapi_extra`` for a route that takes a document ``schema_name`` as JSON or YAML."""
    schema = {"$ref": "#/components/schemas/%s" % schema_name}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema}, "application/yaml": {"schema": schema}}}}
