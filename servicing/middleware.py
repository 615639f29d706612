"""Project-wide HTTP plumbing (issue 16): a request id on every response and log line, URLs
with NUL refused before they reach a view or the database, and ``Cache-Control: no-store`` on
the API (its responses carry borrowers' personal data).

``RequestIdMiddleware`` comes first in ``MIDDLEWARE`` so it also stamps the responses Django
builds for exceptions (404, 500) and the ones other middleware return.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid

from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.cache import patch_cache_control

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's request id is kept when it is a plain token (so it cannot forge log lines).
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

API_PREFIX = "/api/"


def current_request_id() -> str:
    return _request_id.get()


def is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


class RequestIdFilter(logging.Filter):
    """Adds ``%(request_id)s`` to every log record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Not reset on the way out: Django logs a 4xx/5xx after the middleware chain returns.
        _request_id.set(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RejectNulMiddleware:
    """A NUL in the path or the query string is refused with a 400: PostgreSQL cannot hold it
    in a text value, so it would otherwise end as a 500 in whichever query uses it (a lookup
    by external id, an admin filter such as ``?status__exact=%00``). Django already turns
    undecodable bytes (lone surrogates) into U+FFFD in both."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            detail = "The URL contains a NUL character."
            if is_api(request):
                from loans.api_common import error_body

                return JsonResponse(error_body("malformed_request", detail), status=400)
            return HttpResponseBadRequest(detail, content_type="text/plain")
        return self.get_response(request)


class ApiNoStoreMiddleware:
    """No cache (browser or proxy) keeps an API response: they carry personal data."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if is_api(request):
            patch_cache_control(response, no_store=True, private=True)
        return response
