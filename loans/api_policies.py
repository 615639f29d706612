"""API policies named in settings (DRF imports them while defining APIView, so this module
must not import ``rest_framework.views``)."""

from rest_framework import pagination, permissions
from rest_framework.exceptions import ValidationError


class Pagination(pagination.PageNumberPagination):
    page_size_query_param = "pageSize"
    max_page_size = 500

    def get_page_size(self, request):
        """``pageSize`` is a whole number from 1 (above 500 reads 500); anything else is 400,
        not silently the default (the schema calls it an integer: issue 16, schemathesis)."""
        values = request.query_params.getlist(self.page_size_query_param)
        if not values:
            return self.page_size
        if len(values) > 1 or not values[0].isascii() or not values[0].isdigit():
            raise ValidationError({self.page_size_query_param: ["A whole number is required."]})
        size = int(values[0])
        if size < 1:
            raise ValidationError({self.page_size_query_param: ["At least 1."]})
        return min(size, self.max_page_size)

    def get_page_number(self, request, paginator):
        """``page`` is one whole number (a page past the end is 404); ``?page=``, ``page=x``,
        ``page=last`` or the parameter twice is 400 (DRF read them as page 1, the last page or
        the last value given: schemathesis, negative data)."""
        values = request.query_params.getlist(self.page_query_param)
        if not values:
            return 1
        if len(values) > 1 or not values[0].isascii() or not values[0].isdigit():
            raise ValidationError({self.page_query_param: ["A whole number is required."]})
        return values[0]

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] in (self.page_query_param, self.page_size_query_param):
                parameter["schema"] = {**parameter["schema"], "minimum": 1}
        return parameters


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
