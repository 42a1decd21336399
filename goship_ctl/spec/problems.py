"""Validation problems as ``{path, message}`` with a readable field path (``spec.apps[1].replicas``)."""

from __future__ import annotations

from pydantic import ValidationError

WHOLE_DOCUMENT = "<document>"


def field_path(location, prefix: str = "") -> str:
    """pydantic's ``loc`` tuple as a dotted path with ``[i]`` for list items, under ``prefix``."""
    path = prefix
    for part in location:
        if isinstance(part, int):
            path += "[%d]" % part
        elif part == "[key]":
            path += " (key)"
        else:
            path += ("." if path else "") + str(part)
    return path or WHOLE_DOCUMENT


def from_validation_error(error: ValidationError, prefix: str = "") -> list[dict]:
    return [{"path": field_path(item["loc"], prefix), "message": item["msg"].removeprefix("Value error, ")}
            for item in error.errors(include_url=False)]


def from_shared_validator(messages: list[str], shared_prefix: str, prefix: str) -> list[dict]:
    """The collection's ``"<path>: <message>"`` strings, re-rooted from ``shared_prefix`` to ``prefix``."""
    problems = []
    for text in messages:
        path, separator, message = text.partition(": ")
        if not separator:
            path, message = WHOLE_DOCUMENT, text
        elif path.startswith(shared_prefix):
            path = prefix + path[len(shared_prefix):]
        problems.append({"path": path, "message": message})
    return problems
