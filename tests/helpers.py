"""Shared test helpers: the GitLab query texts and small request wrappers."""

import json
import threading
import uuid

import pytest
from django.db import connection

from tests.requirements import needs

SYNC_QUERY = """query cloudConnectorAccess($licenseKey: String!, $gitlabVersion: String!) {
  cloudConnectorAccess(licenseKey: $licenseKey, gitlabVersion: $gitlabVersion) {
    serviceToken { token expiresAt }
    availableServices { name serviceStartTime bundledWith }
    catalog
  }
}"""

ACTIVATE_MUTATION = """mutation($gitlabVersion: String!, $activationCode: String!, $automated: Boolean!, $instanceIdentifier: String!, $hostname: String!) {
  cloudActivationActivate(input: {gitlabVersion: $gitlabVersion, activationCode: $activationCode, automated: $automated, instanceIdentifier: $instanceIdentifier, hostname: $hostname}) {
    licenseKey
    futureSubscriptions { cloudLicenseEnabled offlineCloudLicenseEnabled plan name startsAt expiresAt usersInLicenseCount }
    errors
  }
}"""

# GitLab 18.x-19.x (ee/lib/gitlab/subscription_portal/clients/graphql.rb), as PROTOCOL §2.1 quotes it.
ACTIVATE_MUTATION_19 = """mutation($activationCode: String!, $instanceIdentifier: String!, $uniqueInstanceId: String!, $automated: Boolean!, $gitlabVersion: String!, $hostname: String!) {
  cloudActivationActivate(input: {activationCode: $activationCode, instanceIdentifier: $instanceIdentifier, uniqueInstanceId: $uniqueInstanceId, automated: $automated, gitlabVersion: $gitlabVersion, hostname: $hostname}) {
    licenseKey
    futureSubscriptions { cloudLicenseEnabled offlineCloudLicenseEnabled plan company email name startsAt expiresAt usersInLicenseCount }
    newSubscription
    errors
  }
}"""

# The headers GitLab 18.x-19.x sends with every Cloud Connector request (user ids are often empty on a sync).
GITLAB_19_HEADERS = {
    "User-Agent": "GitLab/19.1.0-ee",
    "X-Gitlab-Version": "19.1.0-ee",
    "X-Gitlab-Realm": "self-managed",
    "X-Gitlab-Host-Name": "gitlab.example.test",
    "X-Gitlab-Deployment-Type": "self-managed",
    "X-Gitlab-User-Id": "",
    "X-Gitlab-Global-User-Id": "",
}


ACTIVATION_TEXTS = {"17.x": ACTIVATE_MUTATION, "19.x": ACTIVATE_MUTATION_19}
UNIQUE_INSTANCE_ID = "b5bd1e66-6fd8-4a4f-9d49-c0a0b0ee0e11"


def activation_post(client, code, *, text="17.x", instance_id=None, unique_instance_id=UNIQUE_INSTANCE_ID):
    """GitLab's activation through /graphql in the words of its version: 17.x, or 18.x-19.x (with the unique
    instance id and GitLab's headers). A new instance unless `instance_id`. Returns the response and its body."""
    variables = {
        "gitlabVersion": "19.1.0-ee" if text == "19.x" else "17.11.0",
        "activationCode": code,
        "automated": True,
        "instanceIdentifier": instance_id or str(uuid.uuid4()),
        "hostname": "gitlab.example.test",
    }
    headers = {}
    if text == "19.x":
        variables["uniqueInstanceId"] = unique_instance_id
        headers = GITLAB_19_HEADERS
    return graphql_post(client, ACTIVATION_TEXTS[text], variables, **headers)


def activate(client, code, **options):
    """An activation the resolver answered (HTTP 200, no GraphQL errors); returns its payload, whose own `errors`
    say whether the code was taken. Options as `activation_post`."""
    response, body = activation_post(client, code, **options)
    assert response.status_code == 200, body
    assert "errors" not in body, body
    return body["data"]["cloudActivationActivate"]


def instance_activated(code, instance_id=None, **fields):
    """The activation service itself (no request): the Activation (instance, license key) of a new instance unless
    `instance_id`; `fields` as `instance_activate` takes them (hostname, gitlab_version, ...)."""
    from subscriptions.services import instance_activate

    return instance_activate(activation_code=code, instance_identifier=instance_id or str(uuid.uuid4()), **fields)


# pytest-django's `admin_user` (a superuser named "admin", the tests' one superuser): its password, for a browser login.
ADMIN_PASSWORD = "password"


def graphql_post(client, query, variables=None, **headers):
    response = client.post(
        "/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}),
        content_type="application/json",
        **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()},
    )
    return response, response.json()


def sync(client, license_key, gitlab_version="17.11.0", query=SYNC_QUERY, **headers):
    return graphql_post(client, query, {"licenseKey": license_key, "gitlabVersion": gitlab_version}, **headers)


def postgres_only(test):
    """Marked `postgres`; on another database skipped with the reason, or failed where PostgreSQL is required
    (tests/requirements.py)."""
    return pytest.mark.postgres(needs("postgresql")(test))


def redis_only(test):
    """Marked `redis`; without Redis skipped with the reason, or failed where Redis is required
    (tests/requirements.py)."""
    return pytest.mark.redis(needs("redis")(test))


def run_at_once(*calls):
    """Runs the calls in threads released together; returns each call's result or the exception it raised.

    Each thread has its own database connection, closed at the end (PostgreSQL would keep the test database busy).
    """
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def run(position, call):
        barrier.wait()
        try:
            outcomes[position] = call()
        except Exception as error:  # the caller asserts on it
            outcomes[position] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(position, call)) for position, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def mint_token(instance, *, at=None, reason="manual"):
    """A token for `instance` signed and recorded now, whatever is stored (a sync mints only when nothing fresh is)."""
    from django.utils import timezone

    from issuer.tokens.services import service_access_token_sign, signer_active
    from subscriptions.selectors import instance_entitlements

    at = at or timezone.now()
    entitlements = instance_entitlements(instance, at)
    minted = service_access_token_sign(instance, entitlements, at=at, reason=reason, signer=signer_active())
    minted.record.save(force_insert=True)
    return minted


def role(name: str):
    """The role's group. Created by a data migration, but a transactional test's flush empties the table, so it is
    synced again when missing."""
    from django.apps import apps
    from django.contrib.auth.models import Group

    from subscriptions.roles import roles_sync

    if not Group.objects.filter(name=name).exists():
        roles_sync(apps)
    return Group.objects.get(name=name)


def user_in(role_name: str):
    """The staff user of a role (subscriptions/roles.py), named after it, made once per test; "superuser" is the
    tests' one superuser, pytest-django's `admin_user` ("admin"), and "no role" a staff user without a group."""
    from django.contrib.auth.models import User

    if role_name == "superuser":
        return User.objects.filter(username="admin").first() or User.objects.create_superuser(
            "admin", "admin@example.com", ADMIN_PASSWORD
        )
    user, created = User.objects.get_or_create(username=role_name.replace(" ", "-"), defaults={"is_staff": True})
    if created and role_name != "no role":
        user.groups.add(role(role_name))
    return user


def analyze_as_owner(table: str) -> None:
    """ANALYZE needs the table's owner: with two roles (CI), through a connection of the owner's; the rows must be
    committed (a transactional test) for it to see them."""
    from django.conf import settings

    owner = settings.DATABASE_OWNER_CREDENTIALS
    if owner is None:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
        return
    import psycopg

    params = connection.get_connection_params()
    params.update(user=owner["USER"], password=owner["PASSWORD"] or None)
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True) as owned:
        owned.execute(f"ANALYZE {table}")


def gunicorn_as_production(port: int) -> list[str]:
    """The command that serves the app as the image does (config/gunicorn.conf.py), on 127.0.0.1:`port`."""
    import sys

    return [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "config.wsgi"]


def free_port() -> int:
    """A port nobody listens on now, for a server a test starts."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def signing_backend_environment() -> dict[str, str]:
    """The signing backend of this test as environment variables, for a manage.py run in another process: under
    `make test-pkcs11` the token the test's keys live in (its module, label and PIN file), else local keys."""
    from django.conf import settings

    names = ["ISSUER_SIGNING_KEY_BACKEND"]
    if settings.ISSUER_PKCS11_TOKEN_LABEL:
        names += ["ISSUER_PKCS11_MODULE", "ISSUER_PKCS11_TOKEN_LABEL", "ISSUER_PKCS11_PIN_FILE"]
    return {name: str(getattr(settings, name)) for name in names}


def last_sync_set(instances, at) -> None:
    """Sets the last sync of `instances` (a queryset, instances or ids) to `at`; None: never synced."""
    from subscriptions.models import InstanceLastSync

    ids = [getattr(instance, "pk", instance) for instance in instances]
    InstanceLastSync.objects.filter(instance_id__in=ids).delete()
    if at is not None:
        InstanceLastSync.objects.bulk_create([InstanceLastSync(instance_id=pk, at=at) for pk in ids])
