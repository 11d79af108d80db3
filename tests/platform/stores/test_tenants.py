"""Tenants and API keys against a real SQLite database: keys shown once, stored hashed, revocable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reelforge.errors import AuthenticationError, NotFoundError, UserInputError
from reelforge.platform.stores.tenants import TenantStore, hash_key


@pytest.fixture
def store(tmp_path: Path) -> TenantStore:
    return TenantStore(f"sqlite:///{tmp_path / 'platform.db'}")


def test_keys_are_stored_only_as_hashes(store, tmp_path):
    tenant, key = store.create("acme", requests_per_minute=5)
    assert key.startswith("rf-acme-") and len(key) > 40
    assert tenant.requests_per_minute == 5 and tenant.active_keys == (f"rf-acme-...{key[-4:]}",)
    rows = sqlite3.connect(tmp_path / "platform.db").execute("SELECT key_hash, display FROM api_keys").fetchall()
    assert rows == [(hash_key(key), f"rf-acme-...{key[-4:]}")]
    assert key not in (tmp_path / "platform.db").read_bytes().decode("latin-1")


def test_authenticate_maps_bearer_key_to_its_tenant(store):
    store.create("acme")
    _, globex_key = store.create("globex")
    assert store.authenticate(f"Bearer {globex_key}").name == "globex"
    assert store.authenticate(f"bearer  {globex_key}").name == "globex"


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Token abc", "Bearer"),
        ("Bearer", "Bearer"),
        ("Bearer rf-acme-guess", "incorrect"),
    ],
)
def test_bad_authorization_headers_say_what_is_wrong(store, header, needle):
    store.create("acme")
    with pytest.raises(AuthenticationError, match=needle) as info:
        store.authenticate(header)
    assert info.value.http_status == 401


def test_rotate_revokes_old_keys_unless_kept(store):
    _, first = store.create("acme")
    second = store.rotate_key("acme", keep_old=True)
    assert store.authenticate(f"Bearer {first}").name == store.authenticate(f"Bearer {second}").name == "acme"
    third = store.rotate_key("acme")
    for old in (first, second):
        with pytest.raises(AuthenticationError, match="revoked"):
            store.authenticate(f"Bearer {old}")
    assert store.authenticate(f"Bearer {third}").name == "acme"
    assert len(store.get("acme").active_keys) == 1


def test_revoke_one_key_or_all(store):
    _, first = store.create("acme")
    second = store.rotate_key("acme", keep_old=True)
    assert store.revoke_key("acme", first) == 1
    assert store.authenticate(f"Bearer {second}").name == "acme"
    with pytest.raises(NotFoundError, match="not an active key"):
        store.revoke_key("acme", first)
    assert store.revoke_key("acme") == 1
    with pytest.raises(AuthenticationError):
        store.authenticate(f"Bearer {second}")


def test_bad_tenant_requests_are_clear(store):
    store.create("acme")
    with pytest.raises(UserInputError, match="already exists"):
        store.create("acme")
    with pytest.raises(UserInputError, match="tenant name"):
        store.create("Bad Name!")
    with pytest.raises(UserInputError, match="requests_per_minute must be at least 1"):
        store.create("zero", requests_per_minute=0)
    with pytest.raises(NotFoundError, match="no tenant named 'ghost'"):
        store.rotate_key("ghost")
    assert [t.name for t in store.list()] == ["acme"]


def test_masked_keys_survive_dashes_in_tenant_and_key():
    from reelforge.platform.stores.tenants import masked_key

    assert masked_key("rf-acme-labs-ab-cd-EF-gh", "acme-labs") == "rf-acme-labs-...F-gh"
