"""``Idempotency-Key`` for API commands (DESIGN §6, issue 6).

A client that may retry a POST sends ``Idempotency-Key: <any string up to 255 characters>``.

* First request with a key: an ``IN_PROGRESS`` row is inserted and committed on its own (so a
  concurrent retry sees it), the view runs, and its status and JSON body are stored and the row
  marked ``DONE`` -- 2xx and 4xx alike. A 5xx (or an unhandled exception) deletes the row so the
  client can retry for real.
* A retry with the same key, user, method, path (query string included) and body gets the stored
  status and body with ``Idempotent-Replayed: true``; the view does not run again.
* The same key with another body, method or path is 409 ``idempotency_key_reused``; a retry
  while the first request still runs is 409 ``request_in_progress``.
* Keys expire after ``settings.IDEMPOTENCY_KEY_TTL_SECONDS`` (default 24 h); an expired key is
  treated as new.

Keys are per user: authentication and permission checks (401/403) and throttling run first, and
anonymous requests (the token endpoint) ignore the header.

The mechanism is ``IdempotentMixin``, hooked into DRF's ``APIView.initial`` (after
authentication, permissions and throttling) and ``finalize_response``. Every API view inherits it
through ``loans.api_common.APIView``. It assumes ``ATOMIC_REQUESTS`` is off (the project default):
the ``IN_PROGRESS`` row must be committed before the view runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http.request import RawPostDataException
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from loans.exceptions import ConflictError, InvalidRequestError, field_error
from loans.models import IdempotencyRecord, IdempotencyRecordState

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
DEFAULT_TTL_SECONDS = 24 * 3600


class IdempotencyKeyReusedError(ConflictError):
    default_code = "idempotency_key_reused"


class RequestInProgressError(ConflictError):
    default_code = "request_in_progress"


class _Replay(Exception):  # noqa: N818 - control flow, not an error
    """Raised from ``initial`` to short-circuit the view with the stored response."""

    def __init__(self, response: Response):
        super().__init__("idempotent replay")
        self.response = response


def ttl() -> timedelta:
    return timedelta(seconds=getattr(settings, "IDEMPOTENCY_KEY_TTL_SECONDS", DEFAULT_TTL_SECONDS))


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of method, full path and body. A JSON body is canonicalised (key order and
    whitespace do not matter); anything else is hashed as sent."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
        payload = canonical.encode()
    except (ValueError, UnicodeDecodeError):
        payload = body
    digest = hashlib.sha256()
    for part in (method.encode(), b"\n", path.encode(), b"\n", payload):
        digest.update(part)
    return digest.hexdigest()


def read_key(request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidRequestError(
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} characters.",
            code="invalid_idempotency_key",
            errors=[field_error(HEADER, "Invalid.", "invalid_idempotency_key")],
        )
    return key


def begin(*, user, key: str, method: str, path: str, request_hash: str) -> IdempotencyRecord:
    """Claim ``key`` for this request, or raise ``_Replay`` / a 409.

    The claim is its own committed transaction: a concurrent retry either fails the unique
    constraint and finds the ``IN_PROGRESS`` row, or comes after and finds ``DONE``.
    """
    now = timezone.now()
    fields = {
        "method": method,
        "path": path[:500],
        "request_hash": request_hash,
        "state": IdempotencyRecordState.IN_PROGRESS,
        "status_code": None,
        "response_body": None,
        "expires_at": now + ttl(),
    }
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(user=user, key=key, **fields)
    except IntegrityError:
        pass
    existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
    if existing is None:  # expired and purged in between: claim it again
        return begin(user=user, key=key, method=method, path=path, request_hash=request_hash)
    if existing.expires_at <= now:
        # An expired key is new again. The conditional update lets one racer win.
        claimed = IdempotencyRecord.objects.filter(
            pk=existing.pk, expires_at=existing.expires_at
        ).update(**fields, created_at=now)
        if claimed:
            existing.refresh_from_db()
            return existing
        existing.refresh_from_db()
    if (existing.method, existing.path, existing.request_hash) != (
        method,
        path[:500],
        request_hash,
    ):
        raise IdempotencyKeyReusedError(
            f"The {HEADER} {key!r} was already used for a different request; use a new key.",
        )
    if existing.state == IdempotencyRecordState.IN_PROGRESS:
        raise RequestInProgressError(
            f"A request with the {HEADER} {key!r} is still being processed; retry later.",
        )
    raise _Replay(
        Response(
            existing.response_body,
            status=existing.status_code,
            headers={REPLAYED_HEADER: "true"},
        )
    )


def finish(record: IdempotencyRecord, response) -> None:
    """Store the response of a claimed key, or release the key after a server error."""
    if response is None or response.status_code >= 500:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    data = getattr(response, "data", None)
    body = json.loads(json.dumps(data, cls=JSONEncoder)) if data is not None else None
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecordState.DONE, status_code=response.status_code, response_body=body
    )


def purge_expired(now=None) -> int:
    """Delete expired keys (they are already treated as new; this only reclaims space)."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


def _raw_body(request) -> bytes:
    try:
        return request._request.body
    except RawPostDataException:  # something already parsed the stream: hash what it parsed
        return json.dumps(request.data, cls=JSONEncoder, sort_keys=True).encode()


class IdempotentMixin:
    """Adds ``Idempotency-Key`` handling to a DRF view's ``idempotent_methods`` (POST)."""

    idempotent_methods = frozenset({"POST"})

    def initial(self, request, *args, **kwargs):
        self._idempotency_record = None
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttling
        if request.method not in self.idempotent_methods:
            return
        user = getattr(request, "user", None)
        if not (user and user.is_authenticated):
            return
        key = read_key(request)
        if key is None:
            return
        path = request.get_full_path()
        self._idempotency_record = begin(
            user=user,
            key=key,
            method=request.method,
            path=path,
            request_hash=request_fingerprint(request.method, path, _raw_body(request)),
        )

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        try:
            return super().handle_exception(exc)
        except BaseException:
            # Unhandled: a 500 follows. Release the key so a retry runs for real.
            record = getattr(self, "_idempotency_record", None)
            if record is not None:
                self._idempotency_record = None
                try:
                    finish(record, None)
                except Exception:  # a broken transaction must not mask the original error
                    logger.exception("Could not release Idempotency-Key %s", record.key)
            raise

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record = getattr(self, "_idempotency_record", None)
        if record is not None:
            self._idempotency_record = None
            finish(record, response)
        return response
