"""A wallet as secret settings: how a keystore made on the operator's machine reaches an agent.

An agent with no keystore file reads its wallet from two settings (`agent.config`'s
`WalletSettings.keystore_json` and `password`): the encrypted keystore document and its password.
`forager fleet deploy --keys` and `forager fleet supervise` put both into a deployment's SDL, so
the container holds a wallet the operator also keeps (which is what lets the operator recreate a
child's wallet from its parent's). Both values are registered with the log redactor here.
"""

from __future__ import annotations

from pathlib import Path

from telemetry.redaction import secrets
from wallets.keystore import read_password

KEYSTORE_JSON_VAR = "FORAGER_WALLET__KEYSTORE_JSON"
PASSWORD_VAR = "FORAGER_WALLET__PASSWORD"  # noqa: S105 -- a setting's name, not a password


def wallet_env(keystore: Path, password_file: Path) -> dict[str, str]:
    """The wallet at `keystore` (its password in `password_file`) as container settings."""
    document = keystore.read_text()
    secrets.register(document)
    return {KEYSTORE_JSON_VAR: document, PASSWORD_VAR: read_password(password_file)}
