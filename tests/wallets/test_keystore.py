"""Keystores: encrypted, private, interoperable, and failing closed."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.conftest import cast
from wallets.errors import KeystoreError
from wallets.keystore import create_keystore, load_keystore, make_wallet, read_password


def test_round_trip_and_file_mode(tmp_path: Path):
    """A created keystore is mode 0600 and decrypts to the same address."""
    path = tmp_path / "k.json"
    account = create_keystore(path, "correct horse")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keystore(path, "correct horse").address == account.address
    assert account.key.hex().removeprefix("0x") not in path.read_text()


def test_foundry_reads_our_keystore(tmp_path: Path):
    """Foundry's cast decrypts a keystore we wrote (Web3 Secret Storage v3)."""
    path = tmp_path / "k.json"
    account = create_keystore(path, "pw-for-cast")
    out = cast("wallet", "address", "--keystore", str(path), "--password", "pw-for-cast")
    assert out.lower() == account.address.lower()


def test_wrong_password_fails_closed(tmp_path: Path):
    """A wrong password is a clear KeystoreError naming the file, not a plaintext fallback."""
    path = tmp_path / "k.json"
    create_keystore(path, "right-password")
    with pytest.raises(KeystoreError, match="wrong password or tampered") as info:
        load_keystore(path, "wrong-password")
    assert str(path) in str(info.value)


def test_tampered_file_fails_closed(tmp_path: Path):
    """Flipping the ciphertext makes decryption fail."""
    path = tmp_path / "k.json"
    create_keystore(path, "right-password")
    doc = json.loads(path.read_text())
    text = doc["crypto"]["ciphertext"]
    doc["crypto"]["ciphertext"] = ("0" if text[0] != "0" else "1") + text[1:]
    path.write_text(json.dumps(doc))
    with pytest.raises(KeystoreError, match="wrong password or tampered"):
        load_keystore(path, "right-password")


def test_missing_or_malformed_file(tmp_path: Path):
    """A missing or non-keystore file is named in the error."""
    with pytest.raises(KeystoreError, match="does not exist"):
        load_keystore(tmp_path / "nope.json", "x")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(KeystoreError, match="malformed"):
        load_keystore(bad, "x")


def test_refuses_to_overwrite_and_reads_password_files(tmp_path: Path):
    """Creating over an existing keystore is refused; empty password files are rejected."""
    path = tmp_path / "k.json"
    create_keystore(path, "pw-123456")
    with pytest.raises(KeystoreError, match="already exists"):
        create_keystore(path, "pw-123456")
    empty = tmp_path / "pw"
    empty.write_text("\n")
    with pytest.raises(KeystoreError, match="empty"):
        read_password(empty)
    good = tmp_path / "pw2"
    good.write_text("secret-pass\n")
    assert read_password(good) == "secret-pass"


def test_a_made_wallet_opens_with_its_own_password_file(tmp_path: Path):
    """make_wallet writes keystore and a fresh password (both 0600) that open each other; it
    keeps a given key, and never overwrites an existing keystore with a fresh one."""
    keystore, password_file = tmp_path / "w" / "k.json", tmp_path / "w" / "k.password"
    made = make_wallet(keystore, password_file)
    assert load_keystore(keystore, read_password(password_file)).address == made.address
    assert {stat.S_IMODE(p.stat().st_mode) for p in (keystore, password_file)} == {0o600}
    before = password_file.read_text()
    with pytest.raises(KeystoreError, match="already exists"):
        make_wallet(keystore, password_file)
    assert password_file.read_text() == before  # the existing wallet's password is kept
    again = make_wallet(tmp_path / "k2.json", tmp_path / "k2.password", made)
    assert again.address == made.address
    assert read_password(tmp_path / "k2.password") != before
