"""A property: whatever sequence of changes is made, no audit event contains a license key, a token, an
activation code (before or after a regeneration), a private key (PEM, its private exponent, or its ciphertext), or
one of the deployment's secrets."""

import base64
import datetime as dt
import json
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from audit.selectors import audit_event_data
from issuer.keys import encryption
from issuer.keys import services as keys
from issuer.models import SigningKey
from subscriptions import services as subs
from subscriptions.models import Subscription
from tests.factories import today
from tests.helpers import mint_token

OPERATIONS = ["subscribe", "regenerate", "activate", "reactivate", "mint", "new_key", "revoke", "rewrap", "seats"]


class World:
    def __init__(self):
        self.secrets: set[str] = set()
        self.bound = []  # (instance identifier, subscription)

    def note(self, *values):
        self.secrets.update(str(value) for value in values if value)

    def subscription(self, name):
        customer = subs.customer_create(name=f"{name.strip()} {uuid.uuid4().hex[:8]}")
        subscription = subs.subscription_create(
            customer=customer,
            license_type="ultimate",
            seats=5,
            starts_on=today() - dt.timedelta(days=1),
            expires_on=today() + dt.timedelta(days=300),
            add_ons=[("duo_enterprise", 5)],
        )
        self.note(subscription.activation_code)
        return subscription

    def run(self, operation, name):
        subscription = Subscription.objects.order_by("-id").first() or self.subscription(name)
        if operation == "subscribe":
            self.subscription(name)
        elif operation == "regenerate":
            self.note(subs.subscription_regenerate_activation_code(subscription).activation_code)
        elif operation == "activate" or (operation == "reactivate" and not self.bound):
            self._activate(str(uuid.uuid4()), self.subscription(name))
        elif operation == "reactivate":
            identifier, bound_to = self.bound[-1]
            self._activate(identifier, Subscription.objects.get(pk=bound_to.pk))
        elif operation == "mint" and self.bound:
            keys.signing_key_ensure_active()
            identifier, _ = self.bound[-1]
            from subscriptions.models import Instance

            self.note(mint_token(Instance.objects.get(instance_identifier=identifier)).token)
        elif operation == "new_key":
            keys.signing_key_create(reason=name)
        elif operation == "revoke":
            active = keys.signing_key_ensure_active()
            keys.signing_key_revoke(active.kid, reason=f"revoked: {name}")
        elif operation == "rewrap":
            keys.signing_keys_rewrap()
        elif operation == "seats":
            subs.subscription_update(subscription, seats=subscription.seats + 1)

    def _activate(self, identifier, subscription):
        self.note(subscription.activation_code)
        activation = subs.instance_activate(
            activation_code=subscription.activation_code, instance_identifier=identifier
        )
        self.note(activation.license_key)
        self.bound.append((identifier, subscription))

    def key_material(self):
        for key in SigningKey.objects.all():
            ciphertext = bytes(key.private_key_encrypted)
            pem = encryption.decrypt(ciphertext)
            private = serialization.load_pem_private_key(pem, password=None)
            body = b"".join(pem.splitlines()[1:-1]).decode()
            d = private.private_numbers().d
            self.note(body[40:100], base64.urlsafe_b64encode(d.to_bytes(256, "big")).decode()[:40], str(d)[:40])
            self.note(ciphertext.decode()[:60], ciphertext.hex()[:60])


@pytest.mark.usefixtures("local_signing_keys")
@pytest.mark.django_db
@hypothesis_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    operations=st.lists(st.sampled_from(OPERATIONS), min_size=1, max_size=8),
    name=st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=30).filter(
        str.strip
    ),
)
def test_no_event_ever_contains_a_secret(operations, name):
    world = World()
    for operation in operations:
        world.run(operation, name)
    world.key_material()
    world.note(settings.SECRET_KEY, settings.LICENSE_KEY_PEPPER, *settings.KEY_ENCRYPTION_KEYS)
    recorded = json.dumps([audit_event_data(event) for event in AuditEvent.objects.all()], ensure_ascii=False)
    assert AuditEvent.objects.exists()
    leaked = {secret[:12] + "…" for secret in world.secrets if secret in recorded}
    assert not leaked, f"secrets found in audit events after {operations}: {leaked}"
