"""Every API operation, read from the OpenAPI schema the API serves, so the tables of the
permission, bad-input and fuzz tests include operations added later without editing them."""

from __future__ import annotations

import functools
import re

from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PARAM = re.compile(r"{([^}]+)}")
UNKNOWN_ID = "999999"


@functools.cache
def api_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def api_operations() -> list[tuple[str, str]]:
    """``[(METHOD, "/api/v1/path/{param}"), ...]`` in schema order."""
    return [
        (method.upper(), path)
        for path, item in api_schema()["paths"].items()
        for method in METHODS
        if method in item
    ]


def operation(method: str, path: str) -> dict:
    return api_schema()["paths"][path][method.lower()]


def is_public(method: str, path: str) -> bool:
    """True where the schema says no authentication is needed (``security: [{}]`` or none)."""
    security = operation(method, path).get("security")
    return not security or security == [{}]


def fill(path: str, values: dict) -> str:
    """Substitute path parameters; a parameter without a value gets an id that names nothing."""
    return PARAM.sub(lambda m: str(values.get(m.group(1), UNKNOWN_ID)), path)


def request_body_schema(method: str, path: str) -> dict | None:
    body = operation(method, path).get("requestBody")
    if not body:
        return None
    ref = body["content"]["application/json"]["schema"].get("$ref")
    if ref is None:
        return body["content"]["application/json"]["schema"]
    return api_schema()["components"]["schemas"][ref.rsplit("/", 1)[1]]
