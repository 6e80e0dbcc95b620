"""`forager wallet new|address|import`, and keys shared with Foundry's cast both ways."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from eth_account import Account

from tests.conftest import cast


def forager(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def password_file(tmp_path: Path, text: str = "wallet-pass-1") -> Path:
    path = tmp_path / f"pw-{text}"
    path.write_text(text + "\n")
    return path


def test_new_then_address_agree_and_cast_reads_it(tmp_path: Path):
    """wallet new prints an address that wallet address and cast both decrypt to."""
    pw, ks = password_file(tmp_path), tmp_path / "k.json"
    made = forager("wallet", "new", "--keystore", str(ks), "--password-file", str(pw))
    assert made.returncode == 0, made.stderr
    address = made.stdout.strip()
    shown = forager("wallet", "address", "--keystore", str(ks), "--password-file", str(pw))
    assert shown.stdout.strip() == address
    by_cast = cast("wallet", "address", "--keystore", str(ks), "--password", "wallet-pass-1")
    assert by_cast.lower() == address.lower()


def test_keystore_written_by_cast_is_usable(tmp_path: Path):
    """A keystore from `cast wallet new` is read as is."""
    out = cast("wallet", "new", str(tmp_path), "--unsafe-password", "wallet-pass-1", "--json")
    entry = json.loads(out)[0]
    ks = Path(entry["path"])
    shown = forager(
        "wallet", "address", "--keystore", str(ks), "--password-file", str(password_file(tmp_path))
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().lower() == entry["address"].lower()


def test_import_reads_key_from_stdin_and_never_prints_it(tmp_path: Path):
    """wallet import encrypts a key from stdin; the key appears in no output."""
    account = Account.create()
    key = account.key.hex()
    ks, pw = tmp_path / "k.json", password_file(tmp_path)
    done = forager("wallet", "import", "--keystore", str(ks), "--password-file", str(pw), stdin=key)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == account.address
    assert key.removeprefix("0x") not in done.stdout + done.stderr + ks.read_text()


def test_bad_key_wrong_password_and_missing_file_fail_closed(tmp_path: Path):
    """Each failure exits 2 with a message that names the problem and not the secret."""
    pw = password_file(tmp_path)
    bad = forager(
        "wallet",
        "import",
        "--keystore",
        str(tmp_path / "x.json"),
        "--password-file",
        str(pw),
        stdin="0x1234-not-a-key",
    )
    assert bad.returncode == 2 and "64 hex digits" in bad.stderr and "not-a-key" not in bad.stderr
    ks = tmp_path / "k.json"
    forager("wallet", "new", "--keystore", str(ks), "--password-file", str(pw))
    wrong = forager(
        "wallet",
        "address",
        "--keystore",
        str(ks),
        "--password-file",
        str(password_file(tmp_path, "other-password")),
    )
    assert wrong.returncode == 2 and "wrong password or tampered" in wrong.stderr
    missing = forager(
        "wallet", "address", "--keystore", str(tmp_path / "none.json"), "--password-file", str(pw)
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr
