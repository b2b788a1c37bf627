"""The Snowplow collector, a machine door: `POST /com.snowplowanalytics.snowplow/tp2` (batched) and `GET /i` (one
event), at the root, so that an AI gateway's `AIGW_BILLING_EVENT__ENDPOINT` is just the issuer's base URL.

The emitter sends no credentials: only ISSUER_COLLECTOR_ALLOWED_NETWORKS answer (default loopback), the rest get a
403. The instance doors' per-address rate limit does not apply (a gateway sends every user's events from one
address); the body is bounded instead. 200 once every valid event of the batch is stored (each counted: stored,
duplicate, unpriced, refused by reason); a 5xx only when nothing was stored, so the emitter retries the batch and
the event ids make the retry harmless."""

import hashlib
import threading

from cachetools import TTLCache
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_ratelimit.core import get_usage
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from config.limits import rate_limit_address
from config.metrics_access import client_in_networks
from config.unavailable import TRANSIENT_FAILURES
from credits.collector import Refused, billable_event, tracker_events
from credits.quota import instance_for_quota, quota_answer
from credits.services import IngestReport, usage_events_record

MAX_BODY_BYTES = 1024 * 1024
MAX_EVENTS = 1000  # per batch; the tracker sends 1 (the gateway's setting) to 10 (its default)


def _refusal(status: int, error: str) -> JsonResponse:
    return JsonResponse({"error": error}, status=status)


def _ingest(request, raw_events: list) -> JsonResponse:
    now, report, parsed = timezone.now(), IngestReport(), []
    for raw in raw_events:
        try:
            parsed.append(billable_event(raw, now))
        except Refused as refused:
            report.refused[refused.reason] += 1
    try:
        usage_events_record(parsed, at=now, report=report)
    except TRANSIENT_FAILURES:
        return _refusal(503, "The ledger cannot store events right now; retry the batch.")
    report.count()
    return JsonResponse(report.as_dict())


def _allowed(request) -> bool:
    return client_in_networks(request, settings.ISSUER_COLLECTOR_ALLOWED_NETWORKS)


@csrf_exempt
@require_POST
def collector_batch(request):
    if not _allowed(request):
        return _refusal(403, "This collector takes events only from the networks it is configured for.")
    if request.content_type != "application/json":
        return _refusal(415, "Send the batch as application/json (Snowplow's payload_data).")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = MAX_BODY_BYTES + 1
    if length > MAX_BODY_BYTES:
        return _refusal(413, f"A batch is at most {MAX_BODY_BYTES} bytes.")
    try:
        events = tracker_events(request.body)
    except Refused:
        return _refusal(
            400, "Not a Snowplow payload_data batch: {'schema': …payload_data/jsonschema/1-0-x, 'data': […]}."
        )
    if len(events) > MAX_EVENTS:
        return _refusal(413, f"A batch is at most {MAX_EVENTS} events.")
    return _ingest(request, events)


@csrf_exempt
@require_GET
def collector_pixel(request):
    if not _allowed(request):
        return _refusal(403, "This collector takes events only from the networks it is configured for.")
    return _ingest(request, [request.GET.dict()])


# A verified service credential is remembered in the process this long: a revoked token, a removed role or a
# changed email is refused within it (the verification costs four queries; a gateway asks for every request).
CREDENTIAL_SECONDS = 60
_credentials_verified = TTLCache(maxsize=256, ttl=CREDENTIAL_SECONDS)
_credentials_lock = threading.Lock()


def _service_credential(request):
    """The AI gateway's `X-Admin-Email` + `X-Admin-Token`: an admin API token (knox, stored as a digest) of an active
    account with that email holding `credits.resolve_consumers` (the "quota service" role). Returns the token's
    public key (what its rate limit counts by); None when no credential is sent; False when it is wrong."""
    email, token = request.headers.get("X-Admin-Email", ""), request.headers.get("X-Admin-Token", "")
    if not email and not token:
        return None
    fingerprint = hashlib.sha256(f"{email.strip().lower()}\n{token}".encode()).hexdigest()
    with _credentials_lock:
        known = _credentials_verified.get(fingerprint)
    if known:
        return known
    try:
        user, auth_token = TokenAuthentication().authenticate_credentials(token.encode())
    except AuthenticationFailed:
        return False
    if not (user.email and user.email.lower() == email.strip().lower() and user.has_perm("credits.resolve_consumers")):
        return False
    with _credentials_lock:
        _credentials_verified[fingerprint] = auth_token.token_key
    return auth_token.token_key


def _empty(status: int, max_age: int | None = None, retry_after: int | None = None) -> HttpResponse:
    response = HttpResponse(status=status, content_type="application/json")
    if max_age is not None:
        response["Cache-Control"] = f"private, max-age={max_age}"
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@require_http_methods(["HEAD", "GET"])
def consumers_resolve(request):
    """`HEAD /api/v1/consumers/resolve`: 200, 402 or 403 with a max-age (`credits.quota`). The gateway's service
    credential is limited per credential; GitLab Rails' unauthenticated ask per client address, as the instance
    doors."""
    credential = _service_credential(request)
    if credential is False:
        return _empty(401)
    if credential is None:
        refusal = rate_limit_address(request)
        if refusal:
            return _empty(429, retry_after=refusal.retry_after)
    else:
        usage = get_usage(
            request,
            group="quota-credential",
            key=lambda _group, _request: credential,
            rate=settings.QUOTA_RATE_PER_CREDENTIAL,
            increment=True,
        )
        if usage and usage["should_limit"]:
            return _empty(429, retry_after=max(int(usage["time_left"]), 1))
    query = request.GET
    try:
        instance = instance_for_quota(query.get("instance_id", ""), query.get("unique_instance_id", ""))
        answer = quota_answer(
            instance,
            event_type=query.get("event_type", ""),
            user_key=(query.get("user_id") or query.get("global_user_id") or "")[:100],
            now=timezone.now(),
        )
    except TRANSIENT_FAILURES:
        return _empty(503, retry_after=30)
    return _empty(answer.status, answer.max_age)
