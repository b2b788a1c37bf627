"""Every service that writes records exactly one event per change. The registry is every public function of every
`services` module (and of every module in a `services` package): each must have a scenario here (what it does, and the events that must follow) or say why it
is not audited (`@not_audited`). A new service with neither fails this test."""

import datetime as dt
import importlib
import inspect
import pkgutil
import uuid
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_purge, audit_record
from credits import services as credits
from issuer.fleet.services import token_records_retain
from issuer.keys import services as keys
from issuer.models import SigningKey, Validator
from subscriptions import services as subs
from subscriptions.models import Customer, Subscription
from tests.factories import AddOnPurchaseFactory, CustomerFactory, SubscriptionFactory, today
from tests.helpers import mint_token

PACKAGES = ["audit", "subscriptions", "issuer", "credits"]


def _service_modules():
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if "services" in info.name.split("."):  # a services module, or a subject module of a services package
                yield importlib.import_module(info.name)


def _services():
    for module in _service_modules():
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not name.startswith("_"):
                yield f"{module.__name__}.{name}", function


def _bound_instance():
    subscription = AddOnPurchaseFactory().subscription
    activation = subs.instance_activate(
        activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4()), hostname="a.test"
    )
    return activation.instance


def _pending_and_active():
    active = keys.signing_key_ensure_active(at=timezone.now() - dt.timedelta(days=40))
    pending = keys.signing_key_create(at=timezone.now() - dt.timedelta(hours=1))
    return pending, active


def _validator():
    keys.validator_fetch_record(user_agent="aigw/1.0", address="10.0.0.5", kids=["k1"], at=timezone.now())
    return Validator.objects.get()


def _an_old_event():
    with transaction.atomic():
        return audit_record("customer.create", object_type="customer", at=timezone.now() - dt.timedelta(days=31))


def _purge_with_retention(days):
    with override_settings(ISSUER_AUDIT_RETENTION_DAYS=days):
        return audit_purge()


# name -> (setup, act, expected actions in order). Setup's own events are not counted.
SCENARIOS = {
    "subscriptions.services.lifecycle.customer_create": (
        lambda: None,
        lambda _: subs.customer_create(name="Acme"),
        ["customer.create"],
    ),
    "subscriptions.services.lifecycle.customer_get_or_create": (
        lambda: CustomerFactory(name="Known"),
        lambda _: (subs.customer_get_or_create(name="Known"), subs.customer_get_or_create(name="New")),
        ["customer.create"],  # the known customer is found, not changed
    ),
    "subscriptions.services.lifecycle.subscription_create": (
        CustomerFactory,
        lambda customer: subs.subscription_create(
            customer=customer,
            license_type="ultimate",
            seats=10,
            starts_on=today(),
            expires_on=today() + dt.timedelta(days=365),
            add_ons=[("duo_pro", 5), ("duo_enterprise", 5)],
        ),
        ["subscription.create", "addonpurchase.create", "addonpurchase.create"],
    ),
    "subscriptions.services.lifecycle.subscription_update": (
        SubscriptionFactory,
        lambda subscription: (
            subs.subscription_update(subscription, seats=12),
            subs.subscription_update(subscription, seats=12),  # no change: no event
        ),
        ["subscription.update"],
    ),
    "subscriptions.services.lifecycle.subscription_extend": (
        lambda: AddOnPurchaseFactory().subscription,
        lambda subscription: subs.subscription_extend(
            subscription,
            expires_on=subscription.expires_on + dt.timedelta(days=365),
            add_ons=list(subscription.add_on_purchases.all()),
        ),
        ["subscription.extend", "addonpurchase.extend"],
    ),
    "subscriptions.services.lifecycle.subscription_set_suspended": (
        SubscriptionFactory,
        lambda subscription: (
            subs.subscription_set_suspended(subscription, True),
            subs.subscription_set_suspended(subscription, True),
            subs.subscription_set_suspended(subscription, False),
        ),
        ["subscription.suspend", "subscription.lift_suspension"],
    ),
    "subscriptions.services.lifecycle.subscription_regenerate_activation_code": (
        SubscriptionFactory,
        subs.subscription_regenerate_activation_code,
        ["subscription.regenerate_activation_code"],
    ),
    "subscriptions.services.lifecycle.add_on_purchase_create": (
        SubscriptionFactory,
        lambda subscription: subs.add_on_purchase_create(
            subscription=subscription,
            add_on="duo_pro",
            quantity=3,
            started_on=subscription.starts_on,
            expires_on=subscription.expires_on,
        ),
        ["addonpurchase.create"],
    ),
    "subscriptions.services.lifecycle.add_on_purchase_update": (
        AddOnPurchaseFactory,
        lambda purchase: subs.add_on_purchase_update(purchase, quantity=7),
        ["addonpurchase.update"],
    ),
    "subscriptions.services.lifecycle.add_on_purchase_cancel": (
        AddOnPurchaseFactory,
        lambda purchase: (subs.add_on_purchase_cancel(purchase), subs.add_on_purchase_cancel(purchase)),
        ["addonpurchase.cancel"],
    ),
    "subscriptions.services.lifecycle.add_on_purchase_set_suspended": (
        AddOnPurchaseFactory,
        lambda purchase: (
            subs.add_on_purchase_set_suspended(purchase, True),
            subs.add_on_purchase_set_suspended(purchase, True),
            subs.add_on_purchase_set_suspended(purchase, False),
        ),
        ["addonpurchase.suspend", "addonpurchase.resume"],
    ),
    "subscriptions.services.lifecycle.object_save_from_form": (
        SubscriptionFactory,
        lambda subscription: (
            setattr(subscription, "seats", 99),
            subs.object_save_from_form(subscription),
            subs.object_save_from_form(Customer(name="From a form")),
        ),
        ["subscription.update", "customer.create"],
    ),
    "subscriptions.services.lifecycle.object_delete_from_form": (
        AddOnPurchaseFactory,
        lambda purchase: subs.object_delete_from_form(purchase.subscription),
        ["addonpurchase.delete", "subscription.delete"],
    ),
    "subscriptions.services.activation.instance_activate": (
        lambda: AddOnPurchaseFactory().subscription,
        lambda subscription: subs.instance_activate(
            activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4())
        ),
        ["instance.activate", "subscription.first_activation"],
    ),
    "subscriptions.services.activation.instance_release": (
        _bound_instance,
        subs.instance_release,
        ["instance.release"],
    ),
    "subscriptions.services.activation.instance_release_clear": (
        lambda: subs.instance_release(_bound_instance()),
        subs.instance_release_clear,
        ["instance.release_clear"],
    ),
    "subscriptions.services.activation.instance_set_suspended": (
        _bound_instance,
        lambda instance: (subs.instance_set_suspended(instance, True), subs.instance_set_suspended(instance, False)),
        ["instance.suspend", "instance.lift_suspension"],
    ),
    "issuer.keys.services.signing_key_create": (
        lambda: None,
        lambda _: keys.signing_key_create(),
        ["signingkey.create"],
    ),
    "issuer.keys.services.signing_key_activate": (
        _pending_and_active,
        lambda pair: keys.signing_key_activate(pair[0].kid, force=True, reason="drill"),
        ["signingkey.retire", "signingkey.activate_forced"],
    ),
    "issuer.keys.services.signing_key_retire": (
        _pending_and_active,
        lambda pair: keys.signing_key_retire(pair[0].kid),
        ["signingkey.retire"],
    ),
    "issuer.keys.services.signing_key_revoke": (
        lambda: keys.signing_key_ensure_active(),
        lambda active: keys.signing_key_revoke(active.kid, reason="leaked"),
        ["signingkey.revoke", "signingkey.create", "signingkey.activate"],  # nothing signs: the successor's
    ),  # activation is due at once
    "issuer.keys.services.signing_key_purge": (
        _pending_and_active,
        lambda pair: (
            keys.signing_key_retire(pair[0].kid),
            keys.signing_key_purge(pair[0].kid, force=True, reason="x"),
        ),
        ["signingkey.retire", "signingkey.purge_forced"],
    ),
    "issuer.keys.services.signing_keys_rewrap": (
        lambda: keys.signing_key_ensure_active(),
        lambda _: keys.signing_keys_rewrap(),
        ["signingkey.rewrap"],
    ),
    "issuer.keys.services.signing_key_ensure_active": (
        lambda: None,
        lambda _: (keys.signing_key_ensure_active(), keys.signing_key_ensure_active()),
        ["signingkey.create", "signingkey.activate"],
    ),
    "issuer.keys.services.signing_key_policy_run": (
        lambda: keys.signing_key_ensure_active(at=timezone.now() - dt.timedelta(days=200)),
        lambda _: keys.signing_key_policy_run(),
        ["signingkey.create"],  # the successor is due; its activation waits for the lead
    ),
    "issuer.keys.services.signing_key_act": (
        _pending_and_active,
        lambda pair: keys.signing_key_act("retire", pair[0].kid, reason="not needed"),
        ["signingkey.retire"],
    ),
    "issuer.fleet.services.token_records_retain": (
        lambda: (
            keys.signing_key_ensure_active(),
            mint_token(_bound_instance(), at=timezone.now() - dt.timedelta(days=500)),
        ),
        lambda _: token_records_retain(),
        ["issuedtoken.retention_delete"],  # SQLite deletes; PostgreSQL puts an old record in the default partition
    ),
    "issuer.keys.services.validator_rename": (
        lambda: _validator(),
        lambda validator: (
            keys.validator_rename(validator, "AI gateway eu-1"),
            keys.validator_rename(validator, "AI gateway eu-1"),
        ),
        ["validator.rename"],
    ),
    "issuer.keys.services.validator_confirm": (
        lambda: _validator(),
        lambda validator: (
            keys.validator_confirm(validator, True),
            keys.validator_confirm(validator, True),
            keys.validator_confirm(validator, False),
        ),
        ["validator.confirm", "validator.unconfirm"],
    ),
    "issuer.keys.services.validator_forget": (
        lambda: _validator(),
        lambda validator: keys.validator_forget(validator, reason="a one-off curl"),
        ["validator.forget"],
    ),
    "credits.services.credit_grant_create": (
        lambda: AddOnPurchaseFactory().subscription,
        lambda subscription: (
            credits.credit_grant_create(
                subscription=subscription, kind="waiver", amount=Decimal("5"), month=today(), reason="goodwill"
            ),
            credits.credit_grant_create(
                subscription=subscription,
                kind="one_time",
                amount=Decimal("50"),
                starts_on=today(),
                expires_on=today() + dt.timedelta(days=30),
                reason="bought once",
            ),
        ),
        ["creditgrant.waiver", "creditgrant.one_time"],
    ),
    "credits.services.credit_included_grant_fix": (
        lambda: AddOnPurchaseFactory().subscription,
        lambda subscription: (
            credits.credit_included_grant_fix(subscription, today()),
            credits.credit_included_grant_fix(subscription, today()),
        ),
        ["creditgrant.included"],
    ),
    "credits.services.credit_included_grants_fix_month": (
        lambda: (AddOnPurchaseFactory().subscription, AddOnPurchaseFactory().subscription),
        lambda _: (
            credits.credit_included_grants_fix_month(today()),
            credits.credit_included_grants_fix_month(today()),
        ),
        ["creditgrant.included", "creditgrant.included"],  # once for each of the two subscriptions, whatever the runs
    ),
    "credits.services.credit_user_cap_set": (
        lambda: AddOnPurchaseFactory().subscription,
        lambda subscription: (
            credits.credit_user_cap_set(subscription, Decimal("10"), reason="pilot"),
            credits.credit_user_cap_set(subscription, Decimal("10"), reason="again"),
            credits.credit_user_cap_set(subscription, None, reason="no cap"),
        ),
        ["creditaccount.user_cap", "creditaccount.user_cap"],
    ),
    "credits.services.credit_user_cap_override_set": (
        lambda: AddOnPurchaseFactory().subscription,
        lambda subscription: (
            credits.credit_user_cap_override_set(subscription, "7", Decimal("5"), reason="lead"),
            credits.credit_user_cap_override_set(subscription, "7", None, reason="done"),
        ),
        ["usercapoverride.set", "usercapoverride.delete"],
    ),
    "credits.services.credit_overage_set": (
        lambda: AddOnPurchaseFactory().subscription,
        lambda subscription: (
            credits.credit_overage_set(subscription, True, reason="terms accepted"),
            credits.credit_overage_set(subscription, True, reason="again"),
            credits.credit_overage_set(subscription, False, reason="terms withdrawn"),
        ),
        ["creditaccount.overage", "creditaccount.overage"],
    ),
    "audit.services.audit_purge": (_an_old_event, lambda _: _purge_with_retention(30), ["audit.purge"]),
}
# Not services that change anything: helpers a `services` module exports for its own doors.
HELPERS = {
    "audit.services.not_audited",
    "audit.services.secret_digest",
    "audit.services.audit_snapshot",
    "audit.services.audit_changes",
    "audit.services.audit_record",
    "audit.services.audit_record_change",
}


def test_every_service_has_a_scenario_or_says_why_it_is_not_audited():
    unaccounted = [
        name
        for name, function in _services()
        if name not in SCENARIOS and name not in HELPERS and not getattr(function, "not_audited", "")
    ]
    assert not unaccounted, f"services without an audit scenario or @not_audited(why): {unaccounted}"
    stale = set(SCENARIOS) - {name for name, _ in _services()}
    assert not stale, f"scenarios for services that no longer exist: {stale}"


# The partitions the migration made follow PostgreSQL's now(); with only Python's clock moved they look old.
WALL_CLOCK = {"issuer.fleet.services.token_records_retain"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=pytest.mark.wall_clock) if name in WALL_CLOCK else name for name in sorted(SCENARIOS)],
)
def test_each_change_is_recorded_exactly_once(db, name):
    setup, act, expected = SCENARIOS[name]
    subject = setup()
    first_new = (AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    act(subject)
    recorded = list(AuditEvent.objects.filter(id__gte=first_new).order_by("id").values_list("action", flat=True))
    assert recorded == expected


def test_an_event_lives_and_dies_with_its_change(db):
    subscription = SubscriptionFactory()
    with pytest.raises(Exception, match="expir|before|after"):
        subs.subscription_update(subscription, expires_on=subscription.starts_on - dt.timedelta(days=1))
    assert not AuditEvent.objects.exists()
    assert Subscription.objects.get(pk=subscription.pk).expires_on == subscription.expires_on
    assert SigningKey.objects.count() == 0
