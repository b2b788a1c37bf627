"""The API's Swagger UI page: a browser without a session is sent to the sign-in page (and back here after it),
not answered "401 Unauthorized"; a caller with credentials (an API token) gets what the schema's permissions say."""

from csp.decorators import csp_update
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from drf_spectacular.views import SpectacularSwaggerSplitView

# Swagger UI sets inline styles (never inline scripts: its start script is a file); allowed on this page only.
_swagger_ui = csp_update({"style-src": ["'unsafe-inline'"]})(SpectacularSwaggerSplitView.as_view(url_name="schema"))


def api_docs(request, *args, **kwargs):
    if not request.user.is_authenticated and "HTTP_AUTHORIZATION" not in request.META:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    return _swagger_ui(request, *args, **kwargs)
