import base64
import datetime as dt
import json
import uuid

from django.utils import timezone

BILLABLE = "iglu:com.gitlab/billable_usage/jsonschema/1-0-3"


def usage(instance, *, event_type="code_completions", quantity=1, event_id=None, at=None, user="u-1", **extra):
    """A billable_usage context's data, as the AI gateway's BillingEventContext dumps it."""
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "event_type": event_type,
        "unit_of_measure": "request",
        "quantity": quantity,
        "realm": "SM",
        "timestamp": (at or timezone.now()).astimezone(dt.UTC).replace(tzinfo=None).isoformat(),
        "instance_id": str(instance.instance_identifier),
        "unique_instance_id": None,
        "global_user_id": f"anon-{user}",
        "subject": user,
        "metadata": {"feature_qualified_name": "code_suggestions"},
        **extra,
    }


def tracker_event(data: dict, *, encode=True) -> dict:
    contexts = json.dumps(
        {
            "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1",
            "data": [{"schema": BILLABLE, "data": data}],
        }
    )
    event = {"e": "se", "se_ca": "CodeCompletions", "se_ac": data.get("event_type", ""), "eid": str(uuid.uuid4())}
    if encode:
        event["cx"] = base64.urlsafe_b64encode(contexts.encode()).decode()
    else:
        event["co"] = contexts
    return event


def batch(*events) -> dict:
    return {"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", "data": list(events)}
