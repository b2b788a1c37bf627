"""The floor of a sync: views that do only what every sync must do, with the same libraries, and nothing else.

`bench/http_bench.py --floor` loads them beside the real syncs. What a floor view does, each part required by the
contract or by an issue that made it so, in the cheapest form those parts allow:

- the JSON body read and parsed (GitLab posts its GraphQL document in it);
- the license key's digest (the cache and the database are keyed by it, never by the key);
- one Redis round trip through redis-py: the address and license-key counts (hostile doors, limits shared by every
  web process) and the cached state's read (the project's own script);
- the cached state's HMAC verified (a Redis writer is not trusted) and decoded;
- the stored token decrypted (tokens are encrypted at rest);
- GitLab's document executed by graphql-core (PROTOCOL §2), from the parse cache, with the executor that reuses
  the catalog's completed values;
- the ~22 kB answer encoded with orjson.

The cold floor adds the RS256 signature, the token's encryption, its record (one statement, the real table) and
the state written back (one Redis write: the next sync must find the new token). The fleet floor reads the inputs
with the real prepared statement, the cached state being missing.

Left out, so that a floor is below any real sync: entitlements, freshness, the instance's bookkeeping, the NUL
checks, the audit frame's work and every error path. A sync / baseline ratio above the floor / baseline ratio of the
same run cannot be reached by trimming the sync; a target above it needs another design or another machine.
Never in production: only `bench/urls.py` routes them.
"""

import time
import uuid

import jwt
import orjson
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from graphql import execute
from psycopg.types.json import Jsonb

import config.machine_doors
from config.postgres import prepared_cursor
from config.signed_cache import signed_value_open, signed_value_seal
from issuer.api.graphql import SCHEMA, RequestContext, _MemoizingExecutor, _static_catalog_views
from issuer.api.graphql_limits import document_cached, document_prepared
from issuer.keys import encryption
from issuer.keys.crypto import private_key_load
from issuer.models import IssuedToken, SigningKey
from issuer.sync_state.store import GENERATION_SECONDS, _inputs_query, _still_valid_since, sync_state_cache_keys
from subscriptions.license_keys import license_key_digest

LIMIT, WINDOW = 10**9, 60  # counted as the real limits count, never refused
# The floor runs the machine doors' lean middleware stack, as the sync it is the floor of (set when the bench's URLs
# load, before the first floor request: the bench warms its server up on another path first).
config.machine_doors.MACHINE_PATHS |= {"/bench/floor/warm", "/bench/floor/cold", "/bench/floor/fleet"}


class _Root:
    """The resolver: the answer's parts as the real resolver returns them, from values already at hand."""

    def __init__(self, token: str, expires_at: str):
        self.token, self.expires_at = token, expires_at

    def cloudConnectorAccess(self, info, licenseKey, gitlabVersion):  # noqa: N802, N803 (GraphQL names)
        services, catalog = _static_catalog_views()
        return {
            "serviceToken": {"token": self.token, "expiresAt": self.expires_at},
            "availableServices": services,
            "catalog": catalog,
        }


def _counted_read(request, payload) -> tuple[str, dict, object]:
    """Body variables → (digest, the state's cache keys' values found, the keys): counts and read in one round trip."""
    digest = license_key_digest(payload["variables"]["licenseKey"])
    keys = sync_state_cache_keys(digest)
    counters = [
        (cache.make_key(f"floor:address:{request.META['REMOTE_ADDR']}"), LIMIT, WINDOW),
        (cache.make_key(f"floor:key:{digest}"), LIMIT, WINDOW),
    ]
    made = [cache.make_key(key) for key in keys]
    _counts, found = cache._cache.count_and_get_many(counters, made, [(made[1], time.time_ns(), GENERATION_SECONDS)])
    return digest, {key: found.get(value) for key, value in zip(keys._fields, made, strict=True)}, keys


def _answer(request, payload, token: str, expires_at: str) -> HttpResponse:
    document, errors, memo = document_cached(payload["query"]) or document_prepared(payload["query"], SCHEMA)
    if errors:  # the floor of a valid sync only: the bench sends GitLab's document
        raise ValueError(f"not a valid document: {errors}")
    result = execute(
        SCHEMA,
        document,
        root_value=_Root(token, expires_at),
        context_value=RequestContext(request=request, memo=memo),
        variable_values=payload["variables"],
        executor_class=_MemoizingExecutor,
    )
    return HttpResponse(orjson.dumps({"data": result.data}), content_type="application/json")


def _opened(keys, found) -> list:
    return signed_value_open(keys.state, found["state"], generation=found["generation"])


@csrf_exempt
def floor_warm(request):
    payload = orjson.loads(request.body)
    _digest, found, keys = _counted_read(request, payload)
    plain = _opened(keys, found)
    _kid, _fingerprint, expires_at, ciphertext, _scopes, _audiences = plain[5]
    token = encryption.decrypt(ciphertext.encode("latin-1")).decode()
    return _answer(request, payload, token, expires_at)


_signer = {}


@csrf_exempt
def floor_cold(request):
    payload = orjson.loads(request.body)
    _digest, found, keys = _counted_read(request, payload)
    plain = _opened(keys, found)
    instance_id = plain[1][0]
    kid, fingerprint, _expires_at, _ciphertext, scopes, audiences = plain[5]
    if not _signer:
        key = SigningKey.objects.get(state=SigningKey.State.ACTIVE)
        _signer.update(kid=key.kid, key=private_key_load(key.kid, key.private_key_encrypted))
    now = int(time.time())
    token = jwt.encode(
        {"iss": "http://127.0.0.1", "sub": str(instance_id), "aud": audiences, "scopes": scopes, "iat": now,
         "nbf": now, "exp": now + 3600, "jti": str(uuid.uuid4())},
        _signer["key"], algorithm="RS256", headers={"kid": _signer["kid"]},
    )  # fmt: skip
    ciphertext = encryption.encrypt(token.encode())
    issued = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now))
    expires = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now + 3600))
    as_json = [Jsonb(value, dumps=orjson.dumps) for value in (scopes, audiences)]
    _record_insert([uuid.uuid4(), instance_id, kid, *as_json, 0, issued, expires, fingerprint, "floor", ciphertext])
    plain[5] = [kid, fingerprint, expires, ciphertext.decode("latin-1"), scopes, audiences]
    state_key = cache.make_key(keys.state)
    sealed = signed_value_seal(keys.state, plain, timeout=900, generation=found["generation"])
    cache._cache.get_client(state_key, write=True).set(state_key, cache._cache._serializer.dumps(sealed), ex=900)
    return _answer(request, payload, token, expires)


def _record_insert(values: list) -> None:
    """The record as the sync writes it: one statement, its own transaction, committed without waiting for the WAL."""
    table = connection.ops.quote_name(IssuedToken._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in IssuedToken._meta.concrete_fields)
    insert = (
        "WITH asynchronous AS (SELECT set_config('synchronous_commit', 'off', true)) "  # noqa: S608
        f"INSERT INTO {table} ({columns}) SELECT {', '.join(['%s'] * len(values))} FROM asynchronous"
    )
    with prepared_cursor() as cursor:
        cursor.execute(insert, values)


@csrf_exempt
def floor_fleet(request):
    payload = orjson.loads(request.body)
    digest, _found, _keys = _counted_read(request, payload)
    with prepared_cursor() as cursor:
        cursor.execute(_inputs_query(), [_still_valid_since(), digest])
        row = cursor.fetchone()
    expires_at, ciphertext = row[3], row[4]
    token = encryption.decrypt(bytes(ciphertext)).decode()
    return _answer(request, payload, token, expires_at.isoformat())
