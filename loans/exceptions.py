"""The domain error family. Domain code raises these; it never imports HTTP.

Each error carries a stable snake_case ``code``, a human ``message`` and optionally a list of
field-level ``errors`` (``{"field": ..., "detail": ..., "code": ...}``). The API renders them with
one exception handler (``loans.api_common.exception_handler``); the admin shows ``message`` as a
page message; the wizard re-renders its step with it.
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    default_code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, errors=None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.errors = list(errors or [])

    def __str__(self) -> str:
        return self.message


class InvalidRequestError(DomainError):
    """The request itself is wrong (HTTP 400)."""

    status = 400
    default_code = "invalid_request"


class NotFoundError(DomainError):
    """An id names nothing (HTTP 404)."""

    status = 404
    default_code = "not_found"


class ConflictError(DomainError):
    """The request is valid but the loan's state does not allow it (HTTP 409)."""

    status = 409
    default_code = "conflict"


class FutureDateError(InvalidRequestError):
    default_code = "future_date"


class DuplicateExternalIdError(InvalidRequestError):
    default_code = "duplicate_external_id"


class SetupLockedError(ConflictError):
    default_code = "setup_locked"


class LoanStateError(ConflictError):
    default_code = "invalid_loan_state"


def field_error(field: str, detail: str, code: str = "invalid") -> dict:
    return {"field": field, "detail": detail, "code": code}
