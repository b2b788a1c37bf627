"""The signed-cache helper on its own: the MAC is HMAC-SHA256, and it binds the key, the generation and the expiry."""

import hmac
import time

import pytest

from config.signed_cache import _SIGNED, HmacKey, signed_cache_keys, signed_value_open, signed_value_seal


def test_the_mac_is_hmac_sha256():
    key = bytes(range(32))
    payload = b'["plain"]' * 100
    expected = hmac.digest(key, _SIGNED.pack(9, -2, 5) + b"a:key" + payload, "sha256")
    assert HmacKey(key).mac(b"a:key", 9, -2, payload) == expected


def test_a_value_opens_only_for_its_key_generation_and_lifetime(settings):
    sealed = signed_value_seal("a:key", {"n": 1}, timeout=60, generation=7)
    assert signed_value_open("a:key", sealed, generation=7) == {"n": 1}
    assert signed_value_open("b:key", sealed, generation=7) is None
    assert signed_value_open("a:key", sealed, generation=8) is None
    assert signed_value_open("a:key", sealed, generation=7, now=time.time() + 61) is None
    assert signed_value_open("a:key", sealed.replace(b'"n":1', b'"n":2'), generation=7) is None
    assert signed_value_open("a:key", b"garbage", generation=7) is None
    assert signed_value_open("a:key", {"n": 1}, generation=7) is None


def test_the_first_key_signs_and_every_key_verifies(settings):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "one-" + "1" * 40, []
    sealed = signed_value_seal("a:key", [1], timeout=60)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "two-" + "2" * 40, ["one-" + "1" * 40]
    assert signed_value_open("a:key", sealed) == [1]
    assert signed_value_seal("a:key", [1], timeout=60)[3:11] == signed_cache_keys()[0].key_id
    settings.SECRET_KEY_FALLBACKS = []
    assert signed_value_open("a:key", sealed) is None


def test_none_and_endless_values_are_refused():
    with pytest.raises(ValueError):
        signed_value_seal("a:key", None, timeout=60)
    with pytest.raises(ValueError):
        signed_value_seal("a:key", [1], timeout=None)
