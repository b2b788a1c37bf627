"""A sync state as plain data (what orjson writes) and back: the instance, its subscription, the subscription's
add-on purchases and the newest stored token, rebuilt as model objects the way Django loads rows (no query, no
signal), so the sync service cannot tell a cached state from one read from the database.

Only what a sync reads is cached: the subscription's activation code (a credential of activation) is left out, and
would be loaded from the database if anything ever read it from a cached state. The field lists come from the
models; their names are part of `SCHEMA`, so a state written before a migration changed a model is a miss.
"""

import datetime as dt
import hashlib
import uuid

from django.db import DEFAULT_DB_ALIAS, models
from django.db.models.base import ModelState

from subscriptions.models import AddOnPurchase, Instance, InstanceLastSync, Subscription

LEFT_OUT = {Subscription: {"activation_code"}}


def _fields(model) -> tuple[tuple[str, object], ...]:
    """(attname, decoder) of each concrete field kept: dates, times and UUIDs come back from their JSON strings."""
    fields = []
    for field in model._meta.concrete_fields:
        if field.attname in LEFT_OUT.get(model, ()):
            continue
        if isinstance(field, models.DateTimeField):
            decode = dt.datetime.fromisoformat
        elif isinstance(field, models.DateField):
            decode = dt.date.fromisoformat
        elif isinstance(field, models.UUIDField):
            decode = uuid.UUID
        elif isinstance(field, models.BinaryField):
            raise TypeError(f"{model.__name__}.{field.name}: binary fields are not cached")
        else:
            decode = None
        fields.append((field.attname, decode))
    return tuple(fields)


INSTANCE_FIELDS = _fields(Instance)
LAST_SYNC_FIELDS = _fields(InstanceLastSync)
SUBSCRIPTION_FIELDS = _fields(Subscription)
PURCHASE_FIELDS = _fields(AddOnPurchase)
TOKEN_FIELDS = ("kid", "fingerprint", "expires_at", "ciphertext", "scopes", "audiences")
SCHEMA = hashlib.sha256(
    repr(
        [
            [name for name, _ in fields]
            for fields in (INSTANCE_FIELDS, LAST_SYNC_FIELDS, SUBSCRIPTION_FIELDS, PURCHASE_FIELDS)
        ]
    ).encode()
    + repr(TOKEN_FIELDS).encode()
).hexdigest()[:16]


def model_values(obj, fields) -> list:
    values = obj.__dict__
    return [values[name] for name, _ in fields]


def model_rebuilt(model, fields, values):
    """A model object from `model_values`, as `Model.from_db` makes one (not adding, from the default database)."""
    obj = model.__new__(model)
    state = ModelState()
    state.adding, state.db = False, DEFAULT_DB_ALIAS
    attributes = obj.__dict__
    attributes["_state"] = state
    for (name, decode), value in zip(fields, values, strict=True):
        attributes[name] = value if decode is None or value is None else decode(value)
    return obj


def last_sync_attached(instance: Instance, values: list | None) -> None:
    """As `select_related("last_sync")` leaves it: the instance's last sync (None: never synced), without a query."""
    last_sync = None if values is None else model_rebuilt(InstanceLastSync, LAST_SYNC_FIELDS, values)
    instance._state.fields_cache["last_sync"] = last_sync
    if last_sync is not None:
        last_sync._state.fields_cache["instance"] = instance


def last_sync_values(instance: Instance) -> list | None:
    return None if instance.last_sync_at is None else model_values(instance.last_sync, LAST_SYNC_FIELDS)


def purchases_attached(subscription: Subscription, purchases: list[AddOnPurchase]) -> None:
    """As `prefetch_related("add_on_purchases")` leaves them: the manager answers from `purchases` without a query,
    and a query made from it (`.active_on(day)`) is still limited to this subscription.

    The queryset is the model's own, with the subscription's filter deferred as a related manager defers it (Django
    applies it when something first builds a query from it): the related manager itself (its class, a router lookup,
    a query clone) cost 2.2% of a fleet sync's instructions, and no sync queries from it. Rows a query from it
    returns do not have `.subscription` attached (one query each if read); nothing on a sync's path reads them."""
    queryset = AddOnPurchase._default_manager.get_queryset()
    queryset._deferred_filter = (False, (), {"subscription": subscription})
    queryset._result_cache = purchases
    queryset._prefetch_done = True
    subscription._prefetched_objects_cache = {"add_on_purchases": queryset}
    for purchase in purchases:
        purchase._state.fields_cache["subscription"] = subscription
