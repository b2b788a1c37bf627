"""Writes of the key lifecycle (PROTOCOL §4): create, activate, retire, revoke, purge, rewrap, and the rotation
policy job. Every door (keys page, admin API, `manage.py signing_keys`, Celery) calls these, the per-key steps
through one action table."""

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetools import TTLCache
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.reasons import reason_text
from audit.services import audit_record, audit_record_change, audit_snapshot, not_audited
from config.unavailable import TRANSIENT_FAILURES
from issuer.conf import issuer_settings
from issuer.jobs import job_lock, job_record_pending
from issuer.keys import crypto, encryption, hsm
from issuer.keys.policy import (
    signing_key_activation_due_at,
    signing_key_purge_due_at,
    signing_key_successor_due_at,
    signing_key_too_early,
)
from issuer.keys.selectors import validators_lagging
from issuer.keys.signals import signing_key_revoked
from issuer.keys.signers import signer_forget
from issuer.models import IssuedToken, SigningKey, Validator

logger = logging.getLogger(__name__)
State = SigningKey.State
Backend = SigningKey.Backend


class SigningKeyRefused(Exception):
    """A lifecycle step the rules do not allow (now, or without force); the message says why."""


class SigningKeyTooEarly(SigningKeyRefused):
    """Refused only because the policy's safe time has not come: `force` would do it. `reason` is the policy's
    explanation, without the advice on how to force (each door words that its own way)."""

    def __init__(self, reason: str, advice: str):
        super().__init__(f"{reason} {advice}")
        self.reason = reason


class SigningKeyBackendUnavailable(SigningKeyRefused):
    """The step needs the PKCS#11 token (to make or destroy a key) and the token cannot be reached now."""


def _validators_behind(key: SigningKey, at: dt.datetime, signing: bool) -> str | None:
    """The validator gate: every validator seen lately must have fetched a set holding `key` before it signs (none
    seen, as on a fresh install: the time rule alone). Not when nothing signs: an outage is worse than a miss."""
    lagging = validators_lagging(key.kid, at) if signing else []
    if not lagging:
        return None
    names = ", ".join(str(validator) for validator in lagging[:5]) + (" …" if len(lagging) > 5 else "")
    return f"{len(lagging)} validator(s) seen lately have not fetched a key set with {key.kid} yet: {names}."


def _reason_required(what: str, reason: str) -> str:
    """Forced steps and revokes override the policy's safety: whoever does it says why, for the audit trail."""
    reason = reason_text(reason)  # visible characters, whatever door called
    if not reason:
        raise SigningKeyRefused(f"{what} needs a reason (it is recorded in the audit trail).")
    return reason


def _locked_key(kid: str) -> SigningKey:
    key = SigningKey.objects.select_for_update().filter(kid=kid).first()
    if key is None:
        raise SigningKeyRefused(f"No signing key with kid {kid!r}.")
    return key


def _key_material(key_size: int, backend: str) -> dict:
    """A new key pair where `backend` keeps it, as the model's fields: the token makes and keeps a PKCS#11 key (the
    database gets its label, id and public part); a local key is made here and stored encrypted."""
    if backend == Backend.PKCS11:
        try:
            made = hsm.hsm_key_generate(key_size)
        except hsm.TokenUnavailable as error:
            raise SigningKeyBackendUnavailable(f"No key can be made in the PKCS#11 token now: {error}") from None
        return {
            "public_jwk": made.public_jwk,
            "private_key_encrypted": None,
            "token_key_label": made.label,
            "token_key_id": made.key_id,
        }
    public_jwk, ciphertext = crypto.rsa_key_generate(key_size)
    return {"public_jwk": public_jwk, "private_key_encrypted": ciphertext}


@transaction.atomic
def signing_key_create(
    *, key_size: int | None = None, at: dt.datetime | None = None, reason: str = "", backend: str | None = None
) -> SigningKey:
    """A new pending key: published in the JWKS at once, signing nothing until activated. Made where
    ISSUER_SIGNING_KEY_BACKEND says, unless `backend` is given."""
    key_size = key_size or issuer_settings.RSA_KEY_SIZE
    backend = backend or settings.ISSUER_SIGNING_KEY_BACKEND
    material = _key_material(key_size, backend)
    try:
        key = SigningKey.objects.create(
            kid=material["public_jwk"]["kid"],
            key_size=key_size,
            backend=backend,
            state=State.PENDING,
            created_at=at or timezone.now(),
            **material,
        )
    except Exception:  # no row, no object: a key the database does not know would stay in the token for good
        if backend == Backend.PKCS11:
            hsm.hsm_key_destroy(material["token_key_id"])
        raise
    audit_record_change("signingkey.create", key, {}, reason=reason, at=key.created_at)
    logger.info("signing key created", extra={"kid": key.kid, "key_size": key.key_size, "backend": backend})
    return key


@transaction.atomic
def signing_key_activate(
    kid: str, *, force: bool = False, at: dt.datetime | None = None, reason: str = ""
) -> SigningKey:
    """pending → active; the previously active key → retired. Refused before the publish lead has passed, so no
    validator meets a token signed by a key it has not fetched yet — unless forced, with a reason (a force that
    overrides nothing, e.g. when no key signs at all, needs none)."""
    at = at or timezone.now()
    locked = list(SigningKey.objects.select_for_update().filter(state__in=[State.ACTIVE, State.PENDING]))
    key = _locked_key(kid)
    if key.state != State.PENDING:
        raise SigningKeyRefused(f"Key {kid} is {key.state}; only a pending key can be activated.")
    signing = any(k.state == State.ACTIVE for k in locked)
    too_early = signing_key_too_early(key, "activate", at, signing=signing) or _validators_behind(key, at, signing)
    if too_early and not force:
        raise SigningKeyTooEarly(too_early, "Use force to activate now.")
    if too_early:
        reason = _reason_required("A forced activation", reason)
    for previous in (other for other in locked if other.state == State.ACTIVE):
        _step(previous, "signingkey.retire", at, f"superseded by {kid}", state=State.RETIRED, retired_at=at)
    action = "signingkey.activate_forced" if too_early else "signingkey.activate"
    _step(key, action, at, reason, state=State.ACTIVE, activated_at=at)
    logger.info("signing key activated", extra={"kid": kid, "forced": force})
    return key


@transaction.atomic
def signing_key_retire(kid: str, *, at: dt.datetime | None = None, reason: str = "") -> SigningKey:
    """A pending key that will not be used: it stays published through the overlap, then purge removes it.
    The active key is never retired alone (that would leave nothing to sign with): activate a successor."""
    key = _locked_key(kid)
    if key.state == State.ACTIVE:
        raise SigningKeyRefused(f"Key {kid} is the active key; activate another key to retire it.")
    if key.state != State.PENDING:
        raise SigningKeyRefused(f"Key {kid} is {key.state}; only a pending key can be retired.")
    at = at or timezone.now()
    return _step(key, "signingkey.retire", at, reason.strip(), state=State.RETIRED, retired_at=at)


@transaction.atomic
def signing_key_revoke(kid: str, *, at: dt.datetime | None = None, reason: str = "") -> SigningKey:
    """Emergency: out of the JWKS at once. If it was signing, the best available successor signs from now on
    (the oldest pending key, else a new key), and once committed `signing_key_revoked` asks for every token it
    signed to be re-minted. Needs a reason."""
    at = at or timezone.now()
    reason = _reason_required("A revoke", reason)
    list(SigningKey.objects.select_for_update().filter(state__in=[State.ACTIVE, State.PENDING]))
    key = _locked_key(kid)
    if key.state == State.REVOKED:
        raise SigningKeyRefused(f"Key {kid} is already revoked.")
    was_active = key.state == State.ACTIVE
    _step(key, "signingkey.revoke", at, reason, state=State.REVOKED, revoked_at=at)
    signer_forget(kid)
    logger.warning("signing key revoked", extra={"kid": kid, "was_active": was_active})
    if was_active:
        why = f"successor of the revoked key {kid}"
        successor = SigningKey.objects.filter(state=State.PENDING).order_by("created_at").first()
        if successor is None:
            successor = _successor_create(at, why)
        if successor is not None:
            signing_key_activate(successor.kid, force=True, at=at, reason=why)
    transaction.on_commit(lambda: signing_key_revoked.send(sender=SigningKey, kid=kid))
    return key


def _successor_create(at: dt.datetime, why: str) -> SigningKey | None:
    """A new key to sign after a revoke; None when the token that must make it is unreachable. The revoke stands
    all the same (a compromised key is withdrawn first): nothing signs until the policy job makes a key, and the
    re-mint is recorded as pending for the refresh run after it."""
    try:
        return signing_key_create(at=at, reason=why)
    except SigningKeyBackendUnavailable as error:
        logger.warning("no successor for a revoked key: the token is unreachable", extra={"error": str(error)})
        job_record_pending("token_refresh", at=at)
        return None


@transaction.atomic
def signing_key_purge(kid: str, *, force: bool = False, at: dt.datetime | None = None, reason: str = "") -> None:
    """Deletes a retired (or revoked) key. A retired key stays until token TTL + validator cache + skew have
    passed since it last signed, so every token it signed has expired everywhere — unless forced, with a reason."""
    at = at or timezone.now()
    key = _locked_key(kid)
    if key.state == State.ACTIVE:
        raise SigningKeyRefused(f"Key {kid} is the active key and cannot be purged.")
    if key.state == State.PENDING:
        raise SigningKeyRefused(f"Key {kid} is pending; retire it first.")
    too_early = signing_key_too_early(key, "purge", at)
    if too_early and not force:
        raise SigningKeyTooEarly(too_early, "Use force to purge anyway.")
    if too_early:
        reason = _reason_required("A forced purge", reason)
    before = audit_snapshot(key)
    audit_record(
        "signingkey.purge_forced" if too_early else "signingkey.purge",
        key,
        changes={name: [value, None] for name, value in before.items() if value is not None},
        reason=reason,
        at=at,
    )
    key.delete()
    signer_forget(kid)
    if key.backend == Backend.PKCS11:
        _token_object_destroy(key)
    logger.info("signing key purged", extra={"kid": kid, "forced": force})


def _token_object_destroy(key: SigningKey) -> None:
    """The purged key's private object goes from the token with its row: if the token cannot be reached, the purge
    is refused (the row stays), so no object is left in the token that nothing refers to."""
    try:
        hsm.hsm_key_destroy(key.token_key_id)
    except hsm.TokenUnavailable as error:
        raise SigningKeyBackendUnavailable(
            f"Key {key.kid} is kept: its object in the PKCS#11 token cannot be destroyed now ({error}). "
            "Purge it again once the token is reachable."
        ) from None


@dataclass(frozen=True)
class RewrapCount:
    keys: int
    tokens: int


@transaction.atomic
def signing_keys_rewrap() -> RewrapCount:
    """Re-encrypts every local private key and stored token with the primary key-encryption key; says how many of
    each (a PKCS#11 key has no ciphertext here: the token keeps it)."""
    count = 0
    local_keys = SigningKey.objects.select_for_update().filter(backend=Backend.LOCAL)
    for key in local_keys.only("pk", "private_key_encrypted"):
        SigningKey.objects.filter(pk=key.pk).update(private_key_encrypted=encryption.rewrap(key.private_key_encrypted))
        count += 1
    tokens = 0
    for token in IssuedToken.objects.filter(token_encrypted__isnull=False).only("pk", "token_encrypted").iterator():
        IssuedToken.objects.filter(pk=token.pk).update(token_encrypted=encryption.rewrap(token.token_encrypted))
        tokens += 1
    audit_record(
        "signingkey.rewrap",
        object_type="signingkey",
        object_id="*",
        changes={"keys_rewrapped": [None, count], "tokens_rewrapped": [None, tokens]},
    )
    return RewrapCount(keys=count, tokens=tokens)


@transaction.atomic
def signing_key_ensure_active(*, at: dt.datetime | None = None) -> SigningKey:
    """A first start (or a start after every key was revoked) gets an active key at once: nothing to overlap."""
    active = SigningKey.objects.filter(state=State.ACTIVE).first()
    if active:
        return active
    job_lock("signing_key_policy")
    active = SigningKey.objects.filter(state=State.ACTIVE).first()
    if active:
        return active
    candidate = SigningKey.objects.filter(state=State.PENDING).order_by("created_at").first()
    why = "there was no active key (first start, or every key revoked)"
    candidate = candidate or signing_key_create(at=at, reason=why)
    return signing_key_activate(candidate.kid, force=True, at=at, reason=why)


def _step(key: SigningKey, action: str, at: dt.datetime, reason: str, **values) -> SigningKey:
    """One state change of a locked key, saved and recorded."""
    before = audit_snapshot(key)
    for name, value in values.items():
        setattr(key, name, value)
    key.save(update_fields=list(values))
    audit_record_change(action, key, before, reason=reason, at=at)
    return key


# A process writes a validator's row at most this often, or at once when the key set it received changed. The check
# is an in-process TTL cache (no network round trip), so the JWKS keeps its speed.
VALIDATOR_WRITE_INTERVAL = dt.timedelta(minutes=1)
# Unconfirmed validators kept at most: a caller spraying User-Agents cannot grow the table without bound.
MAX_VALIDATORS = 200
_validators_written = TTLCache(maxsize=4096, ttl=VALIDATOR_WRITE_INTERVAL.total_seconds())
_validators_written_lock = threading.Lock()
_UNSEEN = object()


@not_audited("telemetry of public fetches: who fetched which key set")
def validator_fetch_record(*, user_agent: str, address: str, kids: list[str], at: dt.datetime) -> bool:
    """Notes a JWKS fetch (`kids`: the key ids of the set it received) per User-Agent and address. Never fails the
    request. Returns whether it wrote.

    Anyone can fetch the JWKS, so a new row is telemetry: only an operator's confirmation (`validator_confirm`)
    lets it hold key activation back. Unconfirmed rows are bounded: past MAX_VALIDATORS the least recently seen
    unconfirmed one makes room, so a caller spraying User-Agents can neither grow the table nor keep a real
    gateway from being seen. Discovery fetches record nothing (they say nothing about keys)."""
    user_agent = user_agent[: Validator._meta.get_field("user_agent").max_length]
    address = address[: Validator._meta.get_field("address").max_length]
    fingerprint = hashlib.sha256(f"{user_agent}\n{address}".encode()).hexdigest()
    received = tuple(kids)
    with _validators_written_lock:
        if _validators_written.get(fingerprint, _UNSEEN) == received:
            return False
    values = {"last_seen_at": at, "user_agent": user_agent, "address": address, "kids": list(kids), "last_jwks_at": at}
    try:
        with transaction.atomic():
            if not Validator.objects.filter(fingerprint=fingerprint).update(**values):
                _unconfirmed_make_room()
                Validator.objects.create(fingerprint=fingerprint, first_seen_at=at, **values)
    except IntegrityError:  # recorded by a concurrent request
        pass
    except TRANSIENT_FAILURES:
        return False
    with _validators_written_lock:
        _validators_written[fingerprint] = received
    return True


def _unconfirmed_make_room() -> None:
    unconfirmed = Validator.objects.filter(confirmed=False)
    surplus = unconfirmed.count() - MAX_VALIDATORS + 1
    if surplus > 0:
        oldest = unconfirmed.order_by("last_seen_at").values_list("pk", flat=True)[:surplus]
        Validator.objects.filter(pk__in=list(oldest)).delete()


@transaction.atomic
def validator_confirm(validator: Validator, confirmed: bool) -> Validator:
    """An operator vouches for a validator (or withdraws it): only confirmed validators hold key activation back."""
    validator = Validator.objects.select_for_update().get(pk=validator.pk)
    if validator.confirmed != confirmed:
        before = audit_snapshot(validator)
        validator.confirmed = confirmed
        validator.save(update_fields=["confirmed"])
        audit_record_change("validator.confirm" if confirmed else "validator.unconfirm", validator, before)
    return validator


@not_audited("the forget window's clean-up of telemetry")
def validators_forget_stale(at: dt.datetime) -> int:
    cutoff = at - dt.timedelta(days=issuer_settings.VALIDATOR_FORGET_DAYS)
    return Validator.objects.filter(last_seen_at__lt=cutoff).delete()[0]


@transaction.atomic
def validator_rename(validator: Validator, name: str) -> Validator:
    """The operator's name for a validator, shown instead of its User-Agent and address."""
    validator = Validator.objects.select_for_update().get(pk=validator.pk)
    before = audit_snapshot(validator)
    validator.name = name.strip()[: Validator._meta.get_field("name").max_length]
    validator.save(update_fields=["name"])
    audit_record_change("validator.rename", validator, before)
    return validator


@transaction.atomic
def validator_forget(validator: Validator, *, reason: str = "") -> None:
    """Drops a validator now (a one-off client that would otherwise hold a rotation back for days)."""
    before = audit_snapshot(validator)
    changes = {name: [value, None] for name, value in before.items() if value not in (None, "", [])}
    audit_record("validator.forget", validator, changes=changes, reason=reason)
    validator.delete()


@dataclass
class PolicyReport:
    actions: list[str] = field(default_factory=list)


@transaction.atomic
def signing_key_policy_run(*, at: dt.datetime | None = None) -> PolicyReport:
    """The rotation policy; idempotent, and serialized by a row lock so two runs cannot double-act.

    Create a pending key when the successor is due; activate it once its activation is due; purge retired keys
    past their overlap (`keys.policy` says when each is due).
    """
    at = at or timezone.now()
    lock = job_lock("signing_key_policy")
    report = PolicyReport()
    active = SigningKey.objects.filter(state=State.ACTIVE).first()
    if active is None:
        active = signing_key_ensure_active(at=at)
        report.actions.append(f"bootstrapped {active.kid}")
    pending = SigningKey.objects.filter(state=State.PENDING).order_by("created_at").first()
    if pending is None and at >= signing_key_successor_due_at(active):
        try:
            pending = signing_key_create(at=at)
            report.actions.append(f"created {pending.kid}")
        except SigningKeyBackendUnavailable as waiting:
            report.actions.append(f"waiting to create a key: {waiting}")
    if pending is not None and at >= signing_key_activation_due_at(pending, active):
        try:
            signing_key_activate(pending.kid, at=at)
            report.actions.append(f"activated {pending.kid}, retired {active.kid}")
        except SigningKeyTooEarly as waiting:
            report.actions.append(f"waiting to activate {pending.kid}: {waiting.reason}")
    validators_forget_stale(at)
    for key in SigningKey.objects.filter(state=State.RETIRED).order_by("retired_at"):
        if at >= signing_key_purge_due_at(key):
            try:
                signing_key_purge(key.kid, at=at)
                report.actions.append(f"purged {key.kid}")
            except SigningKeyBackendUnavailable as waiting:
                report.actions.append(f"waiting to purge {key.kid}: {waiting}")
    lock.last_success_at = at
    lock.save(update_fields=["last_success_at"])
    return report


@dataclass(frozen=True)
class SigningKeyAction:
    description: str
    run: Callable[..., SigningKey | None]
    forceable: bool  # may act before the policy's safe time (activate, purge); forcing needs a reason
    needs_reason: bool = False  # always needs a reason (revoke); the doors ask for one


SIGNING_KEY_ACTIONS = {
    "activate": SigningKeyAction("Activate (start signing; the active key retires)", signing_key_activate, True),
    "retire": SigningKeyAction(
        "Retire (stop using this pending key; it stays published through the overlap)", signing_key_retire, False
    ),
    "revoke": SigningKeyAction(
        "Revoke (emergency: withdraw from the JWKS at once and re-mint every token)",
        signing_key_revoke,
        False,
        needs_reason=True,
    ),
    "purge": SigningKeyAction("Purge (remove from the JWKS for good)", signing_key_purge, True),
}


def signing_key_act(action: str, kid: str, *, force: bool = False, reason: str = "") -> SigningKey | None:
    """One lifecycle step on one key, by name: the keys page, the admin API and the command share this table."""
    step = SIGNING_KEY_ACTIONS.get(action)
    if step is None:
        raise SigningKeyRefused(f"Unknown key action {action!r}; one of: {', '.join(SIGNING_KEY_ACTIONS)}.")
    if step.forceable:
        return step.run(kid, force=force, reason=reason)
    return step.run(kid, reason=reason)
