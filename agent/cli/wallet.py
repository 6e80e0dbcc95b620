"""`forager wallet new|address|import`: the agent's keystore (Web3 Secret Storage v3)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add(commands: Any) -> None:
    wallet = commands.add_parser("wallet", help="create, import or inspect a keystore")
    wallet_commands = wallet.add_subparsers(dest="wallet_command", required=True)
    for name, text in (
        ("new", "create a keystore with a fresh key; print its address"),
        ("address", "decrypt a keystore; print its address"),
        ("import", "encrypt a private key read from stdin into a new keystore"),
    ):
        sub = wallet_commands.add_parser(name, help=text)
        sub.add_argument("--keystore", type=Path, required=True)
        sub.add_argument("--password-file", type=Path, required=True)
    wallet.set_defaults(handler=_wallet)


def _wallet(args: argparse.Namespace) -> int:
    from wallets import keystore

    password = keystore.read_password(args.password_file)
    if args.wallet_command == "new":
        account = keystore.create_keystore(args.keystore, password)
    elif args.wallet_command == "import":
        account = keystore.import_key(args.keystore, sys.stdin.readline(), password)
    else:
        account = keystore.load_keystore(args.keystore, password)
    print(account.address)
    return 0
