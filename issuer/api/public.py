"""Public doors: OIDC discovery and JWKS, served from cached bytes with no crypto, no auth and no throttle; each JWKS
fetch is noted per validator (throttled in-process, so it costs no round trip). Discovery notes nothing."""

from django.http import HttpResponse, HttpResponseNotModified
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe

from config.limits import client_ip
from issuer.conf import issuer_settings
from issuer.keys.selectors import discovery_document_body, keyset
from issuer.keys.services import validator_fetch_record


def _public_json(request, body: bytes, etag: str) -> HttpResponse:
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={issuer_settings.JWKS_MAX_AGE_SECONDS}"
    response["Access-Control-Allow-Origin"] = "*"
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


def _validator_noted(request, kids: tuple[str, ...]) -> None:
    """Who fetched which key set (at most one write a minute per validator and process; see keys.services)."""
    user_agent = request.headers.get("User-Agent", "")
    validator_fetch_record(user_agent=user_agent, address=client_ip(request), kids=kids, at=timezone.now())


@require_safe
def openid_configuration(request):
    body, etag = discovery_document_body()
    return _public_json(request, body, etag)


@require_safe
def jwks(request):
    current = keyset()
    _validator_noted(request, current.kids)
    return _public_json(request, current.jwks_body, current.jwks_etag)
