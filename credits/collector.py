"""Reading Snowplow's tracker protocol (what the AI gateway's and the Duo Workflow Service's `snowplow-tracker`
send, PROTOCOL §9.1) into billable events, checked by hand: a compiled schema per event would cost more than the
rest of the ingestion. Each event is either a `BillableEvent` or the reason it is refused."""

import base64
import binascii
import datetime as dt
import math
import uuid
from dataclasses import dataclass
from decimal import Decimal

import orjson

BILLABLE_USAGE = "iglu:com.gitlab/billable_usage/jsonschema/1-0-"  # every 1-0-x
FUTURE_TOLERANCE = dt.timedelta(seconds=300)
# An event older than this is refused: emitters buffer in memory and retry for minutes, never for days, and a month
# already invoiced must not move. Counted in its own reason, so a gateway whose clock is wrong shows up.
LATE_WINDOW = dt.timedelta(days=7)
MAX_QUANTITY = 2_147_483_647  # the schema's bound


@dataclass(frozen=True)
class BillableEvent:
    event_id: uuid.UUID
    event_type: str
    unit_of_measure: str
    quantity: Decimal
    occurred_at: dt.datetime
    instance_id: uuid.UUID | None
    realm: str
    user_key: str
    feature: str
    correlation_id: str


class Refused(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _contexts(event: dict) -> list:
    if "cx" in event:
        encoded = str(event["cx"])
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise Refused("malformed") from None
    elif "co" in event:
        raw = event["co"]
    else:
        raise Refused("not_billable")
    try:
        wrapper = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Refused("malformed") from None
    data = wrapper.get("data") if isinstance(wrapper, dict) else None
    if not isinstance(data, list):
        raise Refused("malformed")
    return data


def _text(data: dict, name: str, limit: int, *, required: bool = False) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise Refused("malformed")
        return ""
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise Refused("malformed")
    return value


def _moment(text: str, now: dt.datetime) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Refused("malformed") from None
    moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)  # naive: UTC
    if moment > now + FUTURE_TOLERANCE:
        raise Refused("future")
    if moment < now - LATE_WINDOW:
        raise Refused("too_old")
    return moment


def _quantity(value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Refused("bad_quantity")
    if not 0 <= value <= MAX_QUANTITY:
        raise Refused("bad_quantity")
    return Decimal(str(value))


def billable_event(event: dict, now: dt.datetime) -> BillableEvent:
    """The billable_usage context of one tracker event, checked; raises Refused(reason) otherwise."""
    if not isinstance(event, dict):
        raise Refused("malformed")
    usage = next(
        (
            entry.get("data")
            for entry in _contexts(event)
            if isinstance(entry, dict) and str(entry.get("schema", "")).startswith(BILLABLE_USAGE)
        ),
        None,
    )
    if usage is None:
        raise Refused("not_billable")
    if not isinstance(usage, dict):
        raise Refused("malformed")
    try:
        event_id = uuid.UUID(_text(usage, "event_id", 255, required=True))
    except ValueError:
        raise Refused("malformed") from None
    instance = _text(usage, "instance_id", 255)
    try:
        instance_id = uuid.UUID(instance) if instance else None
    except ValueError:
        instance_id = None
    metadata = usage.get("metadata") if isinstance(usage.get("metadata"), dict) else {}
    feature = metadata.get("feature_qualified_name")
    # The GitLab user id (the gateway's `subject`, X-Gitlab-User-Id) first: GitLab reads usage back by it and Rails
    # asks the quota check with it; the gateway's anonymised global_user_id only when no id came.
    user = usage.get("subject") or usage.get("global_user_id") or ""
    return BillableEvent(
        event_id=event_id,
        event_type=_text(usage, "event_type", 100, required=True),
        unit_of_measure=_text(usage, "unit_of_measure", 50, required=True),
        quantity=_quantity(usage.get("quantity")),
        occurred_at=_moment(_text(usage, "timestamp", 64, required=True), now),
        instance_id=instance_id,
        realm=_text(usage, "realm", 32, required=True),
        user_key=str(user)[:100],
        feature=feature[:200] if isinstance(feature, str) else "",
        correlation_id=_text(usage, "correlation_id", 100),
    )


def tracker_events(body: bytes) -> list:
    """The events of a tp2 POST body (`payload_data` 1-0-x: {"schema": …, "data": [event, …]})."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Refused("malformed") from None
    if not isinstance(payload, dict) or not str(payload.get("schema", "")).startswith(
        "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-"
    ):
        raise Refused("malformed")
    events = payload.get("data")
    if not isinstance(events, list):
        raise Refused("malformed")
    return events
