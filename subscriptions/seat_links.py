"""`POST /api/v1/seat_links` (PROTOCOL §6): 200 stored, 422 bad key or body, 400 not JSON, 413 too large, 429 rate
limited (with Retry-After). Never a 500."""

import datetime as dt

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework import serializers

from config.limits import json_body_admitted, rate_limit_license_key
from subscriptions.instance_ids import instance_id_matches
from subscriptions.license_keys import LICENSE_KEY_MAX_LENGTH
from subscriptions.models import validate_printable
from subscriptions.selectors import instance_by_license_key, subscriptions_future
from subscriptions.services import (
    AddOnMetric,
    instance_error_record,
    instance_foreign_id_record,
    seat_report_record,
)

INSTANCE_ID_MISMATCH = "instance_id does not match the instance this license key was activated for."

# GitLab's report is well under 1 kB with a handful of add-ons; these bound what an unknown caller can send.
MAX_BODY_BYTES = 64 * 1024
MAX_ADD_ON_METRICS = 32
RECONCILIATION_INTERVAL = dt.timedelta(days=7)
ALERT_LEAD = dt.timedelta(days=7)


class AddOnMetricSerializer(serializers.Serializer):
    add_on_type = serializers.CharField(max_length=64)
    purchased_seats = serializers.IntegerField(min_value=0)
    assigned_seats = serializers.IntegerField(min_value=0)


class SeatLinkSerializer(serializers.Serializer):
    license_key = serializers.CharField(max_length=LICENSE_KEY_MAX_LENGTH)
    timestamp = serializers.DateTimeField()
    gitlab_version = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="", validators=[validate_printable]
    )
    max_historical_user_count = serializers.IntegerField(min_value=0)
    billable_users_count = serializers.IntegerField(min_value=0)
    hostname = serializers.CharField(
        max_length=255, required=False, allow_blank=True, default="", validators=[validate_printable]
    )
    instance_id = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="", validators=[validate_printable]
    )
    unique_instance_id = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="", validators=[validate_printable]
    )
    add_on_metrics = AddOnMetricSerializer(many=True, required=False, default=list, max_length=MAX_ADD_ON_METRICS)


def _fail(message: str, status: int, headers: dict | None = None) -> JsonResponse:
    return JsonResponse({"success": False, "error": message}, status=status, headers=headers)


def _describe(errors: dict) -> str:
    parts = []
    for field, problems in errors.items():
        text = problems if isinstance(problems, str) else "; ".join(str(p) for p in _flatten(problems))
        parts.append(f"{field}: {text}")
    return ", ".join(parts)


def _flatten(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    elif isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


@csrf_exempt
@require_POST
def seat_link(request):
    payload, refusal = json_body_admitted(request, MAX_BODY_BYTES)
    if refusal is not None:
        return _fail(refusal.message, refusal.status, refusal.headers)
    if not isinstance(payload, dict):
        return _fail("The request body must be a JSON object.", 400)
    license_key = payload.get("license_key") if isinstance(payload.get("license_key"), str) else None
    limited = license_key and rate_limit_license_key(request, license_key)
    if limited:
        return _fail(limited.message, limited.status, limited.headers)
    instance = instance_by_license_key(license_key)
    if instance is None:
        return _fail("The license key is not valid.", 422)
    body = SeatLinkSerializer(data=payload)
    if not body.is_valid():
        return _fail(f"Invalid seat link: {_describe(body.errors)}", 422)
    data = body.validated_data
    if data["instance_id"] and not instance_id_matches(data["instance_id"], instance.instance_identifier):
        instance_foreign_id_record(instance, data["instance_id"], at=timezone.now())
        instance_error_record(instance, INSTANCE_ID_MISMATCH, at=timezone.now())
        return _fail(INSTANCE_ID_MISMATCH, 422)
    try:
        seat_report_record(
            instance=instance,
            reported_at=data["timestamp"],
            gitlab_version=data["gitlab_version"],
            billable_users=data["billable_users_count"],
            max_historical_users=data["max_historical_user_count"],
            hostname=data["hostname"],
            unique_instance_id=data["unique_instance_id"],
            add_on_metrics=[AddOnMetric(**metric) for metric in data["add_on_metrics"]],
        )
    except ValidationError as error:
        return _fail(f"Invalid seat link: {'; '.join(error.messages)}", 422)
    today = timezone.now().date()
    subscription = instance.subscription
    return JsonResponse(
        {
            "success": True,
            "next_reconciliation_date": (today + RECONCILIATION_INTERVAL).isoformat(),
            "display_alert_from": (subscription.expires_on - ALERT_LEAD).isoformat(),
            "future_subscriptions": subscriptions_future(subscription.customer_id, today),
        }
    )
