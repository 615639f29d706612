from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

api_patterns = [
    path("", include("loans.urls")),
    path("", include("servicing.api_urls")),
    path("", include("modifications.urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_patterns)),
]

# Under /api/ the error pages are JSON in the API's error shape (servicing/errors.py).
handler400 = "servicing.errors.bad_request"
handler403 = "servicing.errors.permission_denied"
handler404 = "servicing.errors.page_not_found"
handler500 = "servicing.errors.server_error"
