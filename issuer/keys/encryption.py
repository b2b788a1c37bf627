"""Envelope encryption with the key-encryption keys from the environment (MultiFernet: first encrypts, all decrypt)."""

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed


class KeyEncryptionError(Exception):
    pass


@functools.cache
def _fernet() -> MultiFernet:
    keys = settings.KEY_ENCRYPTION_KEYS
    if not keys:
        raise KeyEncryptionError("KEY_ENCRYPTION_KEYS is not set.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError) as error:
        raise KeyEncryptionError("KEY_ENCRYPTION_KEYS holds an invalid Fernet key.") from error


def encrypt(data: bytes) -> bytes:
    return _fernet().encrypt(data)


def decrypt(ciphertext: bytes) -> bytes:
    try:
        return _fernet().decrypt(bytes(ciphertext))
    except InvalidToken:
        raise KeyEncryptionError("No configured key-encryption key decrypts this data.") from None


def rewrap(ciphertext: bytes) -> bytes:
    """Re-encrypt with the primary key-encryption key."""
    try:
        return _fernet().rotate(bytes(ciphertext))
    except InvalidToken:
        raise KeyEncryptionError("No configured key-encryption key decrypts this data.") from None


def _reset(*, setting, **kwargs):
    if setting == "KEY_ENCRYPTION_KEYS":
        _fernet.cache_clear()


setting_changed.connect(_reset)
