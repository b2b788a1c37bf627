"""The project's URLs plus the two baselines the benchmark compares against."""

import time

import jwt
from django.http import JsonResponse
from django.urls import path

from config.urls import urlpatterns as project_urls
from issuer.crypto import private_key_load
from issuer.models import SigningKey


def bare_json(request):
    """Baseline 1: the cheapest JSON view through the same middleware stack."""
    return JsonResponse({"ok": True})


_signer = {}


def bare_sign(request):
    """Baseline 2: only signs one RS256 JWT with the active key (decrypted once, like the issuer does)."""
    if not _signer:
        key = SigningKey.objects.get(state=SigningKey.State.ACTIVE)
        _signer.update(kid=key.kid, key=private_key_load(key.kid, key.private_key_encrypted))
    now = int(time.time())
    token = jwt.encode(
        {"iat": now, "exp": now + 60}, _signer["key"], algorithm="RS256", headers={"kid": _signer["kid"]}
    )
    return JsonResponse({"token": token})


urlpatterns = [path("bench/json", bare_json), path("bench/sign", bare_sign), *project_urls]
