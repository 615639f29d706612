"""The API's JSON parser and renderer (issue 16).

The parser refuses, with a 400 ``malformed_request``, what would otherwise end as a 500 further
in: nesting deeper than ``MAX_DEPTH`` (50,000 levels is a RecursionError in ``json``; a few
hundred levels would reach the serializers), and strings (keys included) holding NUL or a lone
surrogate (``"\\ud800"`` decodes in Python but cannot be encoded as UTF-8 nor stored by
PostgreSQL). The renderer falls back to ASCII escapes when a response holds a lone surrogate.
"""

from __future__ import annotations

from rest_framework import parsers, renderers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32


def _check_text(value: str) -> None:
    if "\x00" in value:
        raise ParseError("JSON parse error - strings may not contain NUL (\\u0000).")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError("JSON parse error - strings may not contain a lone surrogate.")


def check_json_value(data) -> None:
    """Walk the parsed value without recursion: depth, and every string and key."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
            continue
        if isinstance(value, dict):
            children = value.values()
            for key in value:
                _check_text(key)
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
        stack.extend((child, depth + 1) for child in children)


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
        check_json_value(data)
        return data


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:  # a lone surrogate: escape it rather than fail
            self.ensure_ascii = True
            return super().render(data, accepted_media_type, renderer_context)
