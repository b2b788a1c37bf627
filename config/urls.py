from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from config import api_docs, health, landing, metrics_access

handler404 = "config.api.page_not_found"

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
    path("api/docs/", api_docs.api_docs, name="api-docs"),
    path("admin/", admin.site.urls),
]
