from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import health, landing, metrics_access

urlpatterns = [
    path("", landing.landing, name="landing"),
    path("healthz", health.healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page links: the same icon, not a 404 in every console.
    path("favicon.ico", landing.favicon, name="favicon"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_access.metrics, name="prometheus-django-metrics"),
    path("", include("issuer.urls")),
    path("", include("subscriptions.urls")),
    path("", include("audit.urls")),
    path("", include("credits.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI sets inline styles (never inline scripts: its start script is a file); allowed on this page only.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="api-docs",
    ),
    path("admin/", admin.site.urls),
]
