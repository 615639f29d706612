from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from loans.api import ApiRootView
from servicing import admin_portfolio

api_patterns = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("", include("loans.urls")),
    path("", include("servicing.api_urls")),
    path("", include("modifications.urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

urlpatterns = [
    path(
        "admin/portfolio/",
        admin.site.admin_view(admin_portfolio.portfolio_view),
        name="portfolio",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_patterns)),
    path("favicon.ico", RedirectView.as_view(url=static("loans/favicon.svg"), permanent=True)),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False), name="root"),
]
