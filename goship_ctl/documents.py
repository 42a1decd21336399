"""Read documents from YAML or JSON text, with limits fit for untrusted input.

YAML aliases are refused: a few hundred bytes of nested aliases expand to gigabytes once the
document is copied or serialized ("billion laughs"), and GoShip documents have no use for them.
Nesting is bounded too: the parsers recurse per level, so ``[[[[...]]]]`` would otherwise end in
a RecursionError (a 500) here or further on.
"""

from __future__ import annotations

import json

import yaml

from goship_ctl.errors import BadRequest

MAX_DOCUMENT_BYTES = 1 << 20
MAX_DEPTH = 64  # a Project document is about 8 levels deep, pass-through fields included
_TOO_DEEP = "document nested deeper than %d levels" % MAX_DEPTH
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")


class _NoAliasLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def load_yaml_documents(text: str) -> list:
    """Every document in a YAML (or JSON) text; empty documents are skipped."""
    try:
        documents = [document for document in yaml.load_all(text, Loader=_NoAliasLoader) if document is not None]
    except yaml.YAMLError as exc:
        raise BadRequest("not valid YAML: %s" % exc) from None
    except RecursionError:
        raise BadRequest(_TOO_DEEP) from None
    for document in documents:
        _check_depth(document)
    return documents


def _check_depth(document) -> None:
    """BadRequest when lists and mappings nest deeper than MAX_DEPTH (iterative: no recursion)."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise BadRequest(_TOO_DEEP)
            pending.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))


def load_body(raw: bytes, content_type: str | None):
    """The single document in a request body (JSON, or YAML when the media type says so or is absent)."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise BadRequest("document larger than %d bytes" % MAX_DOCUMENT_BYTES)
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    if media_type in JSON_TYPES:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise BadRequest("not valid JSON: %s" % exc) from None
        except RecursionError:
            raise BadRequest(_TOO_DEEP) from None
        _check_depth(document)
        return document
    if media_type and media_type not in YAML_TYPES:
        raise BadRequest("unsupported media type %r: send application/json or application/yaml" % media_type)
    documents = load_yaml_documents(text)
    if len(documents) != 1:
        raise BadRequest("expected one document, got %d" % len(documents))
    return documents[0]
