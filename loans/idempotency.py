"""``Idempotency-Key`` for API commands (DESIGN §6, issues 6 and 16).

A client that may retry a POST sends ``Idempotency-Key: <any string up to 255 characters>``.

* The key is claimed by inserting a row in **the transaction that runs the command**: the
  view runs inside ``transaction.atomic()`` and the row is marked ``DONE``, with the response's
  status and **exact bytes**, in that same transaction -- 2xx and 4xx alike. So the command and
  its stored answer commit together or not at all: a worker killed mid-command, a lost database
  connection, a 5xx or an unhandled exception roll both back and the key is free again; a
  retry then runs the command (once), as at Stripe.
* A concurrent retry's insert waits (at most ``IDEMPOTENCY_WAIT_SECONDS``) for the holder's
  transaction: it then replays the committed answer, runs if the holder rolled back, or gets
  409 ``request_in_progress`` if the holder is still running.
* A retry with the same key, user, method, path (query string included) and body gets the stored
  status and body, byte for byte, with ``Idempotent-Replayed: true``; the view does not run.
* The same key with another body, method or path is 409 ``idempotency_key_reused``.
* Keys expire after ``settings.IDEMPOTENCY_KEY_TTL_SECONDS`` (default 24 h); an expired key is
  treated as new.

A view whose command commits in steps (claim, commit, call a provider, record) sets
``idempotency_in_transaction = False``: its key is claimed in a committed ``IN_PROGRESS`` row
with a lease of ``REQUEST_TIMEOUT_SECONDS`` (gunicorn's timeout, after which no worker can still
hold it), released on a 5xx; a retry after the lease has expired claims it again.

Keys are per user: authentication and permission checks (401/403) and throttling run first, and
anonymous requests (the token endpoint) ignore the header.

The mechanism is ``IdempotentMixin`` (DRF's ``dispatch``, ``initial``, ``handle_exception`` and
``finalize_response``). Every API view inherits it through ``loans.api_common.APIView``. It
assumes ``ATOMIC_REQUESTS`` is off (the project default).
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.http import HttpResponse
from django.http.request import RawPostDataException
from django.utils import timezone
from rest_framework.utils.encoders import JSONEncoder

from loans.exceptions import ConflictError, InvalidRequestError, field_error
from loans.models import IdempotencyRecord, IdempotencyRecordState

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
DEFAULT_TTL_SECONDS = 24 * 3600
DEFAULT_LEASE_SECONDS = 60
DEFAULT_WAIT_SECONDS = 2
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired


class IdempotencyKeyReusedError(ConflictError):
    default_code = "idempotency_key_reused"


class RequestInProgressError(ConflictError):
    default_code = "request_in_progress"


class _Replay(Exception):  # noqa: N818 - control flow, not an error
    """Raised from ``initial`` to short-circuit the view with the stored response."""

    def __init__(self, response: HttpResponse):
        super().__init__("idempotent replay")
        self.response = response


def ttl() -> timedelta:
    return timedelta(seconds=getattr(settings, "IDEMPOTENCY_KEY_TTL_SECONDS", DEFAULT_TTL_SECONDS))


def lease() -> timedelta:
    return timedelta(seconds=getattr(settings, "REQUEST_TIMEOUT_SECONDS", DEFAULT_LEASE_SECONDS))


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of method, full path and body. A JSON body is canonicalised (key order and
    whitespace do not matter); anything else is hashed as sent."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
        payload = canonical.encode()
    except (ValueError, UnicodeError, RecursionError):
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
    if not key or len(key) > MAX_KEY_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidRequestError(
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable characters.",
            code="invalid_idempotency_key",
            errors=[field_error(HEADER, "Invalid.", "invalid_idempotency_key")],
        )
    return key


@contextmanager
def _bounded_lock_wait():
    """On PostgreSQL, wait at most ``IDEMPOTENCY_WAIT_SECONDS`` for a row another transaction
    holds (its uncommitted claim of the same key), then raise ``RequestInProgressError``."""
    if connection.vendor != "postgresql":
        yield
        return
    wait_ms = int(1000 * getattr(settings, "IDEMPOTENCY_WAIT_SECONDS", DEFAULT_WAIT_SECONDS))
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        (previous,) = cursor.fetchone()
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{wait_ms}ms"])
    try:
        yield
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise RequestInProgressError(
                f"A request with the {HEADER} is still being processed; retry later."
            )
        raise
    finally:
        if not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])


def _in_progress(key: str) -> RequestInProgressError:
    return RequestInProgressError(
        f"A request with the {HEADER} {key!r} is still being processed; retry later."
    )


def begin(*, user, key: str, method: str, path: str, request_hash: str) -> IdempotencyRecord:
    """Claim ``key`` for this request, or raise ``_Replay`` / a 409. Inside the request's
    transaction (the default) the claim commits with the command; outside it (a view with
    ``idempotency_in_transaction = False``) the claim is committed on its own with a lease."""
    now = timezone.now()
    fields = {
        "method": method,
        "path": path[:500],
        "request_hash": request_hash,
        "state": IdempotencyRecordState.IN_PROGRESS,
        "status_code": None,
        "response_content": None,
        "content_type": "",
        "expires_at": now + ttl(),
        "locked_until": now + lease(),
    }
    try:
        with transaction.atomic(), _bounded_lock_wait():
            return IdempotencyRecord.objects.create(user=user, key=key, **fields)
    except IntegrityError:
        pass
    except RequestInProgressError:
        raise _in_progress(key)
    existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
    if existing is None:  # expired and purged in between: claim it again
        return begin(user=user, key=key, method=method, path=path, request_hash=request_hash)
    same_request = (existing.method, existing.path, existing.request_hash) == (
        method,
        path[:500],
        request_hash,
    )
    expired = existing.expires_at <= now
    stale = (
        existing.state == IdempotencyRecordState.IN_PROGRESS
        and (existing.locked_until or existing.created_at + lease()) <= now
    )
    if expired or (stale and same_request):
        # An expired key is new again; a stale claim's holder is dead (its worker was killed
        # after the request timeout). The conditional update lets one racer win.
        try:
            with transaction.atomic(), _bounded_lock_wait():
                claimed = IdempotencyRecord.objects.filter(
                    pk=existing.pk,
                    state=existing.state,
                    expires_at=existing.expires_at,
                    locked_until=existing.locked_until,
                ).update(**fields, created_at=now)
        except RequestInProgressError:
            raise _in_progress(key)
        if claimed:
            existing.refresh_from_db()
            return existing
        return begin(user=user, key=key, method=method, path=path, request_hash=request_hash)
    if not same_request:
        raise IdempotencyKeyReusedError(
            f"The {HEADER} {key!r} was already used for a different request; use a new key.",
        )
    if existing.state == IdempotencyRecordState.IN_PROGRESS:
        raise _in_progress(key)
    response = HttpResponse(
        bytes(existing.response_content or b""),
        status=existing.status_code,
        content_type=existing.content_type or "application/json",
    )
    response[REPLAYED_HEADER] = "true"
    raise _Replay(response)


def finish(record: IdempotencyRecord, response, *, in_transaction: bool) -> None:
    """Store the response of a claimed key, or release the key after a server error (inside
    the request's transaction: roll the whole request back)."""
    if response is None or response.status_code >= 500:
        if in_transaction:
            transaction.set_rollback(True)
        else:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    if hasattr(response, "render"):
        response.render()
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecordState.DONE,
        status_code=response.status_code,
        response_content=bytes(response.content),
        content_type=response.get("Content-Type", ""),
        locked_until=None,
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
    # False for a view whose command commits in steps: its key is then leased (module doc).
    idempotency_in_transaction = True

    def dispatch(self, request, *args, **kwargs):
        if (
            self.idempotency_in_transaction
            and request.method in self.idempotent_methods
            and HEADER in request.headers
        ):
            with transaction.atomic():
                return super().dispatch(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        self._idempotency_record = None
        self._idempotency_savepoint = None
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
        if self._in_transaction():
            self._idempotency_savepoint = transaction.savepoint()

    def _in_transaction(self) -> bool:
        return self.idempotency_in_transaction and transaction.get_connection().in_atomic_block

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        savepoint = getattr(self, "_idempotency_savepoint", None)
        if savepoint is not None:
            # Whatever the view did before it failed is undone; the claim (before the
            # savepoint) stays, to store the error response with it.
            self._idempotency_savepoint = None
            transaction.savepoint_rollback(savepoint)
            transaction.set_rollback(False)
        try:
            return super().handle_exception(exc)
        except BaseException:
            # Unhandled: a 500 follows. Inside the request's transaction the claim is rolled
            # back with it; a leased claim is released so a retry runs for real.
            record = getattr(self, "_idempotency_record", None)
            if record is not None:
                self._idempotency_record = None
                if not self._in_transaction():
                    try:
                        finish(record, None, in_transaction=False)
                    except Exception:  # a broken connection must not mask the original error
                        logger.exception("Could not release Idempotency-Key %s", record.key)
            raise

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record = getattr(self, "_idempotency_record", None)
        if record is not None:
            self._idempotency_record = None
            finish(record, response, in_transaction=self._in_transaction())
        return response
