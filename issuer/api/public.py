"""Public doors: OIDC discovery and JWKS, served from cached bytes with no crypto, no auth and no throttle."""

from django.http import HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe

from issuer.conf import issuer_settings
from issuer.keys.selectors import discovery_document_body, keyset


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


@require_safe
def openid_configuration(request):
    body, etag = discovery_document_body()
    return _public_json(request, body, etag)


@require_safe
def jwks(request):
    current = keyset()
    return _public_json(request, current.jwks_body, current.jwks_etag)
