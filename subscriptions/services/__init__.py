"""Writes on the commercial side. Every door (GraphQL, REST, admin, commands) calls these.

Each service validates with the model's own rules (`full_clean`, which includes the database constraints) and
runs in a transaction, so bad input raises `ValidationError` with a clear message and writes nothing. Writes go
through `save()`, never a bare queryset `update()`, so that listeners (the issuer's sync cache) hear of every
change to an entitlement input.

One module a subject: `lifecycle` (customers, subscriptions, add-on purchases), `activation`, `instance_reports`
(what a sync tells us in passing), `seat_reports`; `subscriptions/writes.py` is how they all write. Every name is
importable from here, so doors say `from subscriptions import services`.
"""

from subscriptions.services.activation import (
    Activation,
    ActivationError,
    RebindRefused,
    instance_activate,
    instance_release,
    instance_release_clear,
    instance_set_suspended,
)
from subscriptions.services.instance_reports import (
    SIGHTINGS_PER_INSTANCE,
    SYNC_RECORD_INTERVAL,
    SyncObservation,
    SyncRecord,
    instance_error_record,
    instance_foreign_id_record,
    instance_sync_observed,
    sync_observation_start,
)
from subscriptions.services.lifecycle import (
    AUDITED_MODELS,
    add_on_purchase_cancel,
    add_on_purchase_create,
    add_on_purchase_set_suspended,
    add_on_purchase_update,
    customer_create,
    customer_get_or_create,
    object_delete_from_form,
    object_save_from_form,
    subscription_create,
    subscription_extend,
    subscription_regenerate_activation_code,
    subscription_set_suspended,
    subscription_update,
)
from subscriptions.services.seat_reports import AddOnMetric, seat_report_record
from subscriptions.writes import field_clip

__all__ = [
    "AUDITED_MODELS",
    "Activation",
    "ActivationError",
    "RebindRefused",
    "AddOnMetric",
    "SIGHTINGS_PER_INSTANCE",
    "SYNC_RECORD_INTERVAL",
    "SyncObservation",
    "SyncRecord",
    "add_on_purchase_cancel",
    "add_on_purchase_create",
    "add_on_purchase_set_suspended",
    "add_on_purchase_update",
    "customer_create",
    "customer_get_or_create",
    "field_clip",
    "instance_activate",
    "instance_error_record",
    "instance_foreign_id_record",
    "instance_release",
    "instance_release_clear",
    "instance_set_suspended",
    "instance_sync_observed",
    "object_delete_from_form",
    "object_save_from_form",
    "seat_report_record",
    "subscription_create",
    "subscription_extend",
    "subscription_regenerate_activation_code",
    "subscription_set_suspended",
    "subscription_update",
    "sync_observation_start",
]
