"""Login brute-force defences shared by the throttle and django-axes (issue 16).

Both identify a client by the same rule, DRF's with ``NUM_PROXIES`` (default 0: the socket's
address; ``X-Forwarded-For`` is the client's to write and is trusted only for the configured
number of proxies in front of the app)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from rest_framework.throttling import BaseThrottle

from loans.api_common import error_body
from servicing.middleware import is_api


def client_ip(request) -> str:
    """``AXES_CLIENT_IP_CALLABLE``: the address the throttle counts too."""
    return BaseThrottle().get_ident(request)


def lockout(request, original_response=None, credentials=None):
    """``AXES_LOCKOUT_CALLABLE``: 429 with Retry-After; the API's error shape under /api/."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    detail = (
        "Too many failed login attempts; try again in "
        f"{max(1, seconds // 60)} minute(s) or ask an administrator to unlock the account."
    )
    if is_api(request):
        response = JsonResponse(error_body("locked_out", detail), status=429)
    else:
        response = HttpResponse(detail, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(seconds)
    return response
