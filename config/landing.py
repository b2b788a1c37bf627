"""`/`: what this server is, with links to the back office, discovery, the JWKS and the API docs."""

from django.conf import settings
from django.http import HttpResponsePermanentRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.http import require_safe


@require_safe
def landing(request):
    return render(request, "landing.html", {"issuer_url": settings.ISSUER_URL})


@require_safe
def favicon(request):
    """Browsers ask for /favicon.ico whatever a page links: the same icon, not a 404 in every console. Resolved
    per request, as the static files' manifest exists only after collectstatic."""
    return HttpResponsePermanentRedirect(static("issuer/favicon.svg"))
