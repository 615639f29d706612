from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from loans.api import ApiRootView
from servicing import admin_portfolio, errors


def favicon(request):
    """The favicon's static URL is resolved per request: with the manifest storage of
    production settings it is known only after collectstatic, not at import time."""
    return HttpResponsePermanentRedirect(static("loans/favicon.svg"))


api_patterns = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("", include("loans.urls")),
    path("", include("servicing.api_urls")),
    path("", include("modifications.urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    # Last: what no route above matched is a JSON 404, with DEBUG on too (servicing/errors.py).
    re_path(r"^(?P<unmatched>.*)$", errors.api_path_not_found, name="api-not-found"),
]

urlpatterns = [
    path(
        "admin/portfolio/",
        admin.site.admin_view(admin_portfolio.portfolio_view),
        name="portfolio",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_patterns)),
    path("favicon.ico", favicon, name="favicon"),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False), name="root"),
]

# Under /api/ the error pages are JSON in the API's error shape (servicing/errors.py).
handler400 = "servicing.errors.bad_request"
handler403 = "servicing.errors.permission_denied"
handler404 = "servicing.errors.page_not_found"
handler500 = "servicing.errors.server_error"
