"""The PKCS#11 backend: RSA signing keys generated inside a token (an HSM; SoftHSM2 in the tests), sensitive and
never extractable, used only to sign (CKM_SHA256_RSA_PKCS). The database keeps the key's label, its CKA_ID and
its public part; the private key never leaves the token.

Each process opens the library and one logged-in session for itself, after the fork (gunicorn's
`post_worker_init`, Celery's `worker_process_init`: `hsm_open_for_process`) or at its first signature, and never
at import, in a master process or in a system check: PKCS#11 state does not survive a fork. Threads share the
session under a lock (a PKCS#11 session serves one operation at a time). A failed call drops the session and
opens a new one once; if that fails too the token is unavailable (`TokenUnavailable`), the doors that mint answer
503 and the next call tries again, so a token that comes back needs no restart.

The user PIN comes from ISSUER_PKCS11_PIN_FILE (readable by its owner only: the check issuer.E008 refuses any
other) or ISSUER_PKCS11_PIN; once read, the log redaction filter replaces it wherever it would appear."""

import contextlib
import logging
import os
import secrets
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pkcs11
from django.conf import settings
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import NoSuchKey, PKCS11Error

from config.logging import secret_value_register
from issuer.keys.crypto import ALLOWED_KEY_SIZES, rsa_public_jwk

logger = logging.getLogger(__name__)


class TokenUnavailable(Exception):
    """The token cannot be used now (module, token, PIN, session or key object); the message says which, never
    the PIN."""


# The private key's template: made in the token, kept there, usable to sign and for nothing else.
PRIVATE_KEY_TEMPLATE = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
}
# The public half is read once (its modulus and exponent go to the database) and not kept in the token.
PUBLIC_KEY_TEMPLATE = {Attribute.TOKEN: False, Attribute.VERIFY: True, Attribute.ENCRYPT: False, Attribute.WRAP: False}
KEY_LABEL_PREFIX = "cloud-connector-issuer-"


@dataclass
class _Connection:
    pid: int
    session: pkcs11.Session
    private_keys: dict[bytes, pkcs11.PrivateKey] = field(default_factory=dict)  # by CKA_ID


_libraries: dict[str, tuple[int, pkcs11.lib]] = {}  # by module path: (the process that initialised it, lib)
_connection: _Connection | None = None
_lock = threading.Lock()


def _forget_parents_session() -> None:
    """In a forked child: the parent's session and lock mean nothing here (the library is re-initialised at use)."""
    global _connection, _lock
    _connection = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_parents_session)


def hsm_configured() -> bool:
    return bool(settings.ISSUER_PKCS11_MODULE and settings.ISSUER_PKCS11_TOKEN_LABEL)


def pin_file_problem(path: str) -> str | None:
    """Why the PIN file may not be used (missing, or readable by others than its owner), or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return f"ISSUER_PKCS11_PIN_FILE {path} cannot be read ({error.strerror})."
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"ISSUER_PKCS11_PIN_FILE {path} is readable by others than its owner (mode {stat.S_IMODE(mode):o})."
    return None


def _pin() -> str:
    path = settings.ISSUER_PKCS11_PIN_FILE
    if path:
        problem = pin_file_problem(path)
        if problem:
            raise TokenUnavailable(problem)
        pin = Path(path).read_text().strip()
    else:
        pin = settings.ISSUER_PKCS11_PIN
    secret_value_register(pin)
    return pin


def _library(module: str) -> pkcs11.lib:
    """The module loaded and C_Initialize'd once per process (again in a forked child, as PKCS#11 requires)."""
    entry = _libraries.get(module)
    if entry is not None and entry[0] == os.getpid():
        return entry[1]
    if entry is not None:
        entry[1].reinitialize()
        library = entry[1]
    else:
        library = pkcs11.lib(module)
    _libraries[module] = (os.getpid(), library)
    return library


def _open() -> _Connection:
    module, label = settings.ISSUER_PKCS11_MODULE, settings.ISSUER_PKCS11_TOKEN_LABEL
    if not (module and label):
        raise TokenUnavailable("ISSUER_PKCS11_MODULE and ISSUER_PKCS11_TOKEN_LABEL must both be set.")
    try:
        token = _library(module).get_token(token_label=label)
        session = token.open(rw=True, user_pin=_pin())
    except (PKCS11Error, OSError) as error:
        raise TokenUnavailable(f"The PKCS#11 token {label!r} cannot be opened: {type(error).__name__}.") from None
    return _Connection(pid=os.getpid(), session=session)


def _drop() -> None:
    global _connection
    if _connection is not None and _connection.pid == os.getpid():
        with contextlib.suppress(PKCS11Error):  # a lost session cannot be closed either
            _connection.session.close()
    _connection = None


def hsm_call(operation: Callable[[_Connection], object]):
    """`operation(connection)` on this process's session, under its lock. A failure drops the session and the
    call is made once more on a new one; a second failure is `TokenUnavailable`."""
    global _connection
    with _lock:
        for attempt in (1, 2):
            if _connection is None or _connection.pid != os.getpid():
                _connection = _open()
            try:
                return operation(_connection)
            except NoSuchKey:
                raise TokenUnavailable("The signing key's object is not in the configured PKCS#11 token.") from None
            except PKCS11Error as error:
                _drop()
                if attempt == 2:
                    raise TokenUnavailable(f"The PKCS#11 token failed: {type(error).__name__}.") from None
                logger.warning("PKCS#11 session failed; opening a new one", extra={"error": type(error).__name__})
    raise AssertionError("unreachable")  # the loop returns or raises


def hsm_open_for_process() -> None:
    """A new worker process opens its session before its first request, so a broken token shows at once in
    /readyz and the logs; a failure is only logged (the first signature tries again)."""
    if not hsm_configured():
        return
    try:
        hsm_call(lambda connection: None)
    except TokenUnavailable as error:
        logger.warning("PKCS#11 token not reachable at worker start", extra={"error": str(error)})


def hsm_reachable() -> tuple[bool, str]:
    """For /readyz: a round trip to the token (a search for objects), not just the session we think we have."""
    try:
        hsm_call(lambda connection: list(connection.session.get_objects({Attribute.LABEL: "readiness probe"})))
    except TokenUnavailable as error:
        return False, str(error)
    return True, "ok"


def _private_key(connection: _Connection, key_id: bytes) -> pkcs11.PrivateKey:
    key = connection.private_keys.get(key_id)
    if key is None:
        key = connection.session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
        connection.private_keys[key_id] = key
    return key


def hsm_sign(key_id: str, signing_input: bytes) -> bytes:
    """RS256 in the token: RSASSA-PKCS1-v1_5 over SHA-256 (CKM_SHA256_RSA_PKCS) by the key with CKA_ID `key_id`."""
    identifier = bytes.fromhex(key_id)
    return hsm_call(
        lambda connection: _private_key(connection, identifier).sign(signing_input, mechanism=Mechanism.SHA256_RSA_PKCS)
    )


@dataclass(frozen=True)
class TokenKey:
    public_jwk: dict
    label: str
    key_id: str  # CKA_ID, hex


def hsm_key_generate(key_size: int) -> TokenKey:
    """A new RSA key pair made inside the token: the private key stays there (sensitive, not extractable), the
    public key is read and dropped. A key whose kid would start with "-" (see `crypto.rsa_key_generate`) is
    destroyed in the token and drawn again."""
    if key_size not in ALLOWED_KEY_SIZES:
        raise ValueError(f"RSA key size must be one of {ALLOWED_KEY_SIZES}, not {key_size}.")

    def generate(connection: _Connection) -> TokenKey:
        while True:
            identifier = secrets.token_bytes(16)
            label = KEY_LABEL_PREFIX + identifier.hex()[:16]
            public, private = connection.session.generate_keypair(
                KeyType.RSA,
                key_size,
                id=identifier,
                label=label,
                store=True,
                public_template=PUBLIC_KEY_TEMPLATE,
                private_template=PRIVATE_KEY_TEMPLATE,
            )
            modulus = int.from_bytes(public[Attribute.MODULUS], "big")
            exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
            public.destroy()
            jwk = rsa_public_jwk(modulus, exponent)
            if not jwk["kid"].startswith("-"):
                return TokenKey(public_jwk=jwk, label=label, key_id=identifier.hex())
            private.destroy()

    return hsm_call(generate)


def hsm_key_destroy(key_id: str) -> bool:
    """Destroys the private key object with CKA_ID `key_id`; False when the token holds none (already gone)."""
    identifier = bytes.fromhex(key_id)

    def destroy(connection: _Connection) -> bool:
        connection.private_keys.pop(identifier, None)
        template = {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: identifier}
        found = list(connection.session.get_objects(template))
        for key in found:
            key.destroy()
        return bool(found)

    return hsm_call(destroy)
