"""API policies named in settings (DRF imports them while defining APIView, so this module
must not import ``rest_framework.views``)."""

from rest_framework import pagination, permissions


class Pagination(pagination.PageNumberPagination):
    page_size_query_param = "pageSize"
    max_page_size = 500


class CommandPermission(permissions.BasePermission):
    """Reads need an authenticated user; each command needs its own permission.

    A view declares ``command_permissions = {"POST": "cancel_servicing"}`` (codenames of
    ``loans.Loan``'s permissions) or overrides ``required_permission(request)``.
    """

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        getter = getattr(view, "required_permission", None)
        codename = (
            getter(request)
            if getter
            else getattr(view, "command_permissions", {}).get(request.method)
        )
        return codename is None or user.has_perm(f"loans.{codename}")


__all__ = ["CommandPermission", "Pagination"]
