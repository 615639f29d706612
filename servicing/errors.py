"""Django's error views (``handler400/403/404/500``): under ``/api/`` they answer in the API's
error shape ``{code, detail, errors}`` (a non-numeric id, an unknown path, a 500), elsewhere
Django's own pages. A too large request body is 413 (Django raises it as a 400)."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from loans.api_common import TOO_LARGE_DETAIL, error_body
from servicing.middleware import current_request_id, is_api


def _json(code: str, detail: str, status: int) -> JsonResponse:
    return JsonResponse(error_body(code, detail), status=status)


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig) and is_api(request):
        return _json("request_too_large", TOO_LARGE_DETAIL, 413)
    if is_api(request):
        return _json("malformed_request", "Bad request.", 400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if is_api(request):
        return _json("permission_denied", "You do not have permission to perform this action.", 403)
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception=None):
    if is_api(request):
        return _json("not_found", "Not found.", 404)
    return defaults.page_not_found(request, exception)


@csrf_exempt
def api_path_not_found(request, unmatched: str = ""):
    """The last route under ``/api/v1/``: an unknown path or a non-numeric id is the API's JSON
    404 with DEBUG on as well (Django's technical 404 page bypasses ``handler404``)."""
    return _json("not_found", "Not found.", 404)


def server_error(request):
    if is_api(request):
        return _json(
            "server_error",
            f"An unexpected error occurred; quote request id {current_request_id()}.",
            500,
        )
    return defaults.server_error(request)
