"""API tokens hashed at rest, expiring, and dying on password change (issue 16, finding 7).

The wire format is DRF's: ``POST /api/v1/auth/token {username, password} -> {token}``, then
``Authorization: Token <key>``. Each successful login issues a new key (the key cannot be read
back from the database, so an existing token cannot be handed out again); the response is the
only place the key ever appears. ``servicing.models.ApiToken`` explains what is stored.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import authentication, exceptions

from servicing.models import ApiToken

PREFIX_LENGTH = 8


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@transaction.atomic
def issue_token(user) -> str:
    """A new key for ``user``, valid for ``settings.API_TOKEN_TTL``; the user's expired tokens
    are deleted on the way."""
    now = timezone.now()
    ApiToken.objects.filter(user=user, expires_at__lte=now).delete()
    key = secrets.token_hex(20)
    ApiToken.objects.create(
        user=user,
        digest=digest(key),
        prefix=key[:PREFIX_LENGTH],
        credential=user.get_session_auth_hash(),
        created_at=now,
        expires_at=now + settings.API_TOKEN_TTL,
    )
    return key


def revoke_token(key: str) -> int:
    deleted, _ = ApiToken.objects.filter(digest=digest(key)).delete()
    return deleted


class ApiTokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``Token`` header, checked against ``ApiToken``. A failed check is a 401
    ``authentication_failed`` in the API's error shape; an expired token or one issued before
    the password changed is deleted when it is presented."""

    keyword = "Token"

    def authenticate_credentials(self, key):
        token = ApiToken.objects.select_related("user").filter(digest=digest(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = token.user
        if token.expires_at <= timezone.now():
            token.delete()
            raise exceptions.AuthenticationFailed("Token has expired; ask for a new one.")
        if not secrets.compare_digest(token.credential, user.get_session_auth_hash()):
            ApiToken.objects.filter(user=user).delete()
            raise exceptions.AuthenticationFailed(
                "Token is no longer valid: the password has changed."
            )
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return (user, token)
