"""`/`: what this server is, with links to the back office, discovery, the JWKS and the API docs."""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def landing(request):
    return render(request, "landing.html", {"issuer_url": settings.ISSUER_URL})
