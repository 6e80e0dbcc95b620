"""Encrypted key files (Web3 Secret Storage v3, as eth-account writes them).

Files are written with mode 0600 and atomically; loading fails closed with a `KeystoreError`
that names the file and never the key.
"""

from __future__ import annotations

import json
import os
import secrets as pysecrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from telemetry.redaction import secrets
from wallets.errors import KeystoreError

_FILE_MODE = 0o600


def create_keystore(path: Path, password: str) -> LocalAccount:
    """Generate a fresh key, write it encrypted to `path` (must not exist) and return it."""
    _refuse_overwrite(path)
    account: LocalAccount = Account.create()
    write_keystore(path, account, password)
    secrets.register(account.key.hex())
    return account


def import_key(path: Path, private_key: str, password: str) -> LocalAccount:
    """Encrypt an existing hex private key into a new keystore at `path`."""
    _refuse_overwrite(path)
    text = private_key.strip()
    digits = text.removeprefix("0x")
    if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        # Never echo the input: it may be a key with a typo.
        raise KeystoreError("private key on stdin must be 64 hex digits, optionally 0x-prefixed")
    secrets.register(digits)
    try:
        account: LocalAccount = Account.from_key(bytes.fromhex(digits))
    except ValueError as exc:
        raise KeystoreError("private key on stdin is not a valid secp256k1 key") from exc
    write_keystore(path, account, password)
    return account


def make_wallet(
    keystore: Path, password_file: Path, account: LocalAccount | None = None
) -> LocalAccount:
    """A wallet on disk: `account` (by default a fresh key, and then `keystore` must not exist)
    encrypted into `keystore` with a new random password written to `password_file`, both 0600.

    The one way a wallet is made for an agent: on first start, for a child, for a deployment.
    """
    if account is None:
        _refuse_overwrite(keystore)
        account = Account.create()
    password = pysecrets.token_urlsafe(24)
    secrets.register(password)
    secrets.register(account.key.hex())
    write_private_file(password_file, password)
    write_keystore(keystore, account, password)
    return account


def _refuse_overwrite(path: Path) -> None:
    if path.exists():
        raise KeystoreError(f"keystore {path} already exists; refusing to overwrite it")


def write_keystore(path: Path, account: LocalAccount, password: str) -> None:
    """Encrypt `account` with `password` into `path`, mode 0600, atomically."""
    document = Account.encrypt(account.key, password)
    write_private_file(path, json.dumps(document))


def write_private_file(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def load_keystore(path: Path, password: str) -> LocalAccount:
    """Decrypt the keystore at `path`; raise `KeystoreError` on any problem."""
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise KeystoreError(f"keystore {path} does not exist") from exc
    except OSError as exc:
        raise KeystoreError(f"keystore {path} is not a readable JSON key file") from exc
    return decrypt_keystore(text, password, f"keystore {path}")


def decrypt_keystore(text: str, password: str, where: str) -> LocalAccount:
    """Decrypt a Web3 Secret Storage v3 document; `where` names it in errors."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise KeystoreError(f"{where} is not a readable JSON key file") from exc
    try:
        key = Account.decrypt(document, password)
    except ValueError as exc:
        # eth-account says "MAC mismatch" both for a wrong password and a tampered file.
        if "MAC" in str(exc):
            raise KeystoreError(
                f"{where} could not be decrypted: wrong password or tampered file"
            ) from exc
        raise KeystoreError(f"{where} is malformed: expected Web3 Secret Storage v3") from exc
    except (KeyError, TypeError) as exc:
        raise KeystoreError(f"{where} is malformed: expected Web3 Secret Storage v3") from exc
    secrets.register(key.hex())
    account: LocalAccount = Account.from_key(key)
    return account


_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def derive_child_key(parent_key: bytes, n: int) -> bytes:
    """Child n's private key, derived from the parent's: whoever holds the parent's key (the
    agent, or the operator who made its keystore) can compute it, and no one else can."""
    counter = 0
    while True:
        material = b"openforager-child" + parent_key + n.to_bytes(4, "big")
        digest = keccak(material + counter.to_bytes(4, "big"))
        if 0 < int.from_bytes(digest, "big") < _SECP256K1_ORDER:
            return digest
        counter += 1


def read_password(path: Path) -> str:
    """Read a password file (trailing newline stripped); fail closed if absent or empty."""
    try:
        password = path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise KeystoreError(f"password file {path} cannot be read") from exc
    if not password:
        raise KeystoreError(f"password file {path} is empty")
    secrets.register(password)
    return password
