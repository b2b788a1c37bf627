"""The project's URLs plus the baselines the benchmark compares against and the sync's floor (bench/floor.py)."""

import time

import jwt
import orjson
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from bench.floor import floor_cold, floor_fleet, floor_warm
from config.urls import urlpatterns as project_urls
from issuer.keys.crypto import private_key_load
from issuer.models import SigningKey
from unit_primitives.catalog import available_services, catalog_document


def bare_json(request):
    """Baseline 1: the cheapest JSON view through the same middleware stack."""
    return JsonResponse({"ok": True})


def bare_json_same_size(request):
    """Baseline 1b (information only): no logic either, but as many bytes as a sync answer (the catalog)."""
    body = {
        "data": {
            "cloudConnectorAccess": {
                "serviceToken": {"token": "x" * 900, "expiresAt": "2026-01-01T00:00:00Z"},
                "availableServices": list(available_services()),
                "catalog": catalog_document(),
            }
        }
    }
    return HttpResponse(orjson.dumps(body), content_type="application/json")


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


def bare_copy(request):
    """Baseline 3 (the credits collector's): receives the same HTTP batch and COPYs its events as they are into a
    scratch table, without parsing a context, validating, deduplicating or pricing."""
    from django.db import connection

    events = orjson.loads(request.body)["data"]
    with connection.cursor() as cursor:
        cursor.execute("CREATE UNLOGGED TABLE IF NOT EXISTS bench_raw_events (body jsonb)")
        with cursor.cursor.copy("COPY bench_raw_events (body) FROM STDIN") as copy:
            for event in events:
                copy.write_row([orjson.dumps(event).decode()])
    return JsonResponse({"stored": len(events)})


urlpatterns = [
    path("bench/copy", csrf_exempt(bare_copy)),
    path("bench/json", bare_json),
    path("bench/json-large", bare_json_same_size),
    path("bench/sign", bare_sign),
    path("bench/floor/warm", floor_warm),
    path("bench/floor/cold", floor_cold),
    path("bench/floor/fleet", floor_fleet),
    *project_urls,
]
