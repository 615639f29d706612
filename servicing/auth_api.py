"""``POST /api/v1/auth/token`` (DESIGN §6): a username and password for an API token.
``servicing.tokens`` says what a token is and how it dies."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.response import Response

from loans.api_common import APIView, error_responses, parse
from loans.exceptions import InvalidRequestError
from loans.serializers import TokenRequestSerializer, TokenSerializer
from servicing.tokens import issue_token


class TokenView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=TokenRequestSerializer,
        responses={200: TokenSerializer, **error_responses(400)},
        auth=[],
    )
    def post(self, request):
        data = parse(TokenRequestSerializer, request).validated_data
        # Django's request, not DRF's: django-axes marks a locked-out login on it, and its
        # middleware answers 429 for it (servicing.security.lockout).
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if user is None or not user.is_active:
            raise InvalidRequestError(
                "Unable to log in with the given credentials.", code="invalid_credentials"
            )
        return Response({"token": issue_token(user)})
