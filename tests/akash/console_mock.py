"""A loopback stand-in for the Console API operations the client uses.

Every request body it receives and every response it sends is validated against the schemas
in the Console's own OpenAPI description (`shared/akash/console-api/openapi.json`); any
mismatch is recorded in `violations`, which tests assert is empty.
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jsonschema import Draft7Validator
from ruamel.yaml import YAML

from akash.validate import find_schema
from tests.conftest import REPO
from tests.loopback import LoopbackServer

SPEC = json.loads((find_schema(REPO).parent / "console-api" / "openapi.json").read_text())
OWNER = "akash1owner0000000000000000000000000000000"
USER_ID = "0f6d2c8e-4a51-4b7e-9c3a-1d2e3f405162"  # the API key's user


def _fix(schema: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema: `nullable`, and the spec's `^d+$` (a lost backslash)."""
    if isinstance(schema, list):
        return [_fix(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    fixed = {k: _fix(v) for k, v in schema.items()}
    if fixed.get("pattern") == "^d+$":
        fixed["pattern"] = r"^\d+$"
    if fixed.pop("nullable", False) and "type" in fixed:
        fixed["type"] = [fixed["type"], "null"]
    return fixed


def _schema(path: str, method: str, status: int | None) -> dict[str, Any]:
    op = SPEC["paths"][path][method]
    if status is None:
        return _fix(op["requestBody"]["content"]["application/json"]["schema"])
    return _fix(op["responses"][str(status)]["content"]["application/json"]["schema"])


def _deployment(
    dseq: str, state: str, leases: list[dict[str, Any]], escrow: dict[str, Any] | None = None
) -> dict[str, Any]:
    escrow = escrow or {"state": "open", "funds": 5_000_000, "deposits": [5_000_000]}
    deposits = [
        {
            "owner": OWNER,
            "height": str(100 + n),
            "source": "balance",
            "balance": {"denom": "uact", "amount": str(amount)},
        }
        for n, amount in enumerate(escrow["deposits"])
    ]
    return {
        "deployment": {
            "id": {"owner": OWNER, "dseq": dseq},
            "state": state,
            "hash": "ab" * 16,
            "created_at": "100",
        },
        "leases": leases,
        "escrow_account": {
            "id": {"scope": "deployment", "xid": f"{OWNER}/{dseq}"},
            "state": {
                "owner": OWNER,
                "state": escrow["state"],
                "transferred": [{"denom": "uact", "amount": "0"}],
                "settled_at": "100",
                "funds": [{"denom": "uact", "amount": str(escrow["funds"])}],
                "deposits": deposits,
            },
        },
    }


def example(schema: dict[str, Any]) -> Any:
    """The smallest instance of a (fixed) schema: required properties only, plain values."""
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example(props[name]) for name in schema.get("required", []) if name in props}
    return {"array": [], "string": "x", "number": 0, "integer": 0, "boolean": False}.get(str(kind))


def _bid(dseq: str, provider: str, amount: str, gpu: str | None) -> dict[str, Any]:
    attributes = [{"key": f"vendor/nvidia/model/{gpu}", "value": "true"}] if gpu else []
    offer = {
        "resources": {
            "cpu": {"units": {"val": "1000"}, "attributes": []},
            "gpu": {"units": {"val": "1" if gpu else "0"}, "attributes": attributes},
            "memory": {"quantity": {"val": "2147483648"}, "attributes": []},
            "storage": [{"name": "default", "quantity": {"val": "4294967296"}, "attributes": []}],
            "endpoints": [{"kind": "SHARED_HTTP", "sequence_number": 0}],
        },
        "count": 1,
    }
    return {
        "bid": {
            "id": {
                "owner": OWNER,
                "dseq": dseq,
                "gseq": 1,
                "oseq": 1,
                "provider": provider,
                "bseq": 0,
            },
            "state": "open",
            "price": {"denom": "uact", "amount": amount},
            "created_at": "101",
            "resources_offer": [offer],
        },
        "escrow_account": _deployment(dseq, "active", [])["escrow_account"],
    }


class ConsoleMock:
    """The Console API on loopback, in memory. Knobs: `bids`, `bids_after_polls`, `fail`.

    Each deployment keeps an escrow (`escrow(dseq)`: state, funds in uact, deposits); a deposit
    of D USD adds D * 1 000 000 uact (ACT ≈ 1 USD). `lease(dseq, ...)` makes a leased deployment
    directly, for tests that start from a running tenant. `settings` holds each deployment's
    auto top-up setting; `run_auto_top_up()` does what the Console does with it (one top-up of
    every active deployment that has it on).
    """

    def __init__(self, api_key: str = "test-key") -> None:
        self.api_key = api_key
        self.bids: list[tuple[str, str, str | None]] = [
            ("akash1cheap", "900.5", None),
            ("akash1dear", "4000", "h100"),
        ]
        self.bids_after_polls = 1
        self.fail: dict[str, tuple[int, str]] = {}  # operation -> (status, message)
        self.violations: list[str] = []
        self.calls: list[str] = []
        self.deployments: dict[str, dict[str, Any]] = {}
        self.provider_hosts: dict[str, str] = {}  # provider address -> hostUri
        self.tokens: list[dict[str, Any]] = []  # the `data` of each JWT request
        self.settings: dict[str, dict[str, Any]] = {}  # dseq -> its deployment settings
        self._next = 1000
        self._polls = 0
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                mock.handle(self, "get")

            def do_POST(self) -> None:
                mock.handle(self, "post")

            def do_DELETE(self) -> None:
                mock.handle(self, "delete")

            def do_PATCH(self) -> None:
                mock.handle(self, "patch")

            def log_message(self, *_: Any) -> None:
                return

        self.loopback = LoopbackServer(Handler)

    @property
    def url(self) -> str:
        return self.loopback.url

    def close(self) -> None:
        self.loopback.close()

    def _check(self, where: str, schema: dict[str, Any], value: Any) -> None:
        for error in Draft7Validator(schema).iter_errors(value):
            self.violations.append(f"{where}: {error.json_path}: {error.message}")

    def handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        body = json.loads(req.rfile.read(length)) if length else None
        self.calls.append(f"{method.upper()} {url.path}")
        if req.headers.get("x-api-key") != self.api_key:
            self._send(req, 401, {"message": "Unauthorized"})
            return
        route = self._route(method, url.path)
        if route is None:
            self._send(req, 404, {"message": f"no route {method} {url.path}"})
            return
        spec_path, operation, status = route
        if body is not None:
            self._check(f"request {spec_path}", _schema(spec_path, method, None), body)
        if operation in self.fail:
            code, message = self.fail[operation]
            self._send(req, code, {"message": message})
            return
        answer = getattr(self, f"_{operation}")(url, body)
        if isinstance(answer, tuple):  # an operation that answers with another status
            status, answer = answer
        self._check(f"response {spec_path}", _schema(spec_path, method, status), answer)
        self._send(req, status, answer)

    def _route(self, method: str, path: str) -> tuple[str, str, int] | None:
        if method == "post" and path == "/v1/deployments":
            return "/v1/deployments", "create", 201
        if method == "get" and path == "/v1/bids":
            return "/v1/bids", "bids", 200
        if method == "post" and path == "/v1/leases":
            return "/v1/leases", "lease", 200
        if method == "post" and path == "/v1/deposit-deployment":
            return "/v1/deposit-deployment", "deposit", 200
        if method == "post" and path == "/v1/create-jwt-token":
            return "/v1/create-jwt-token", "token", 201
        if method == "get" and re.fullmatch(r"/v1/providers/akash1\w+", path):
            return "/v1/providers/{address}", "provider", 200
        if method == "post" and path == "/v2/deployment-settings":
            return "/v2/deployment-settings", "settings_create", 201
        if re.fullmatch(r"/v2/deployment-settings/\d+", path) and method in ("get", "patch"):
            return "/v2/deployment-settings/{dseq}", f"settings_{method}", 200
        if re.fullmatch(r"/v1/deployments/\d+", path):
            return "/v1/deployments/{dseq}", {"get": "get", "delete": "close"}[method], 200
        return None

    def _create(self, _url: Any, body: Any) -> dict[str, Any]:
        self._next += 1
        dseq = str(self._next)
        self.deployments[dseq] = {
            "state": "active",
            "leases": [],
            "sdl": body["data"]["sdl"],
            "escrow": self._new_escrow(),
        }
        tx = {"code": 0, "transactionHash": "CD" * 32, "rawLog": ""}
        return {"data": {"dseq": dseq, "manifest": f'[{{"name":"{dseq}"}}]', "signTx": tx}}

    def _bids(self, url: Any, _body: Any) -> dict[str, Any]:
        dseq = parse_qs(url.query)["dseq"][0]
        self._polls += 1
        if self._polls <= self.bids_after_polls:
            return {"data": []}
        return {"data": [_bid(dseq, p, a, g) for p, a, g in self.bids]}

    def _lease(self, _url: Any, body: Any) -> dict[str, Any]:
        wanted = body["leases"][0]
        dseq, provider = wanted["dseq"], wanted["provider"]
        price = next(a for p, a, _ in self.bids if p == provider)
        lease = {
            "id": {**wanted, "owner": OWNER, "bseq": 0},
            "state": "active",
            "price": {"denom": "uact", "amount": price},
            "created_at": "102",
            "closed_on": "0",
            "status": {
                "forwarded_ports": {},
                "ips": {},
                "services": {
                    "agent": {
                        "name": "agent",
                        "available": 1,
                        "total": 1,
                        "uris": [f"{dseq}.{provider}.example"],
                        "observed_generation": 1,
                        "replicas": 1,
                        "updated_replicas": 1,
                        "ready_replicas": 1,
                        "available_replicas": 1,
                    }
                },
            },
        }
        self.deployments[dseq]["leases"] = [lease]
        return {"data": _deployment(dseq, "active", [lease], self.deployments[dseq]["escrow"])}

    @staticmethod
    def _new_escrow() -> dict[str, Any]:
        return {"state": "open", "funds": 5_000_000, "deposits": [5_000_000]}

    def escrow(self, dseq: str) -> dict[str, Any]:
        """The deployment's escrow, to read or to set (`state`, `funds` in uact, `deposits`)."""
        escrow: dict[str, Any] = self.deployments[dseq]["escrow"]
        return escrow

    def lease(self, provider: str = "akash1cheap", price: str = "900.5") -> str:
        """A new deployment with an active lease from `provider` at `price` uact per block."""
        self._next += 1
        dseq = str(self._next)
        self.deployments[dseq] = {"state": "active", "leases": [], "escrow": self._new_escrow()}
        self.bids = [(provider, price, None), *self.bids]
        wanted = {"dseq": dseq, "gseq": 1, "oseq": 1, "provider": provider}
        self._lease(None, {"leases": [wanted]})
        return dseq

    def _view(self, dseq: str) -> dict[str, Any]:
        known = self.deployments[dseq]
        return {"data": _deployment(dseq, known["state"], known["leases"], known["escrow"])}

    def _get(self, url: Any, _body: Any) -> dict[str, Any]:
        return self._view(url.path.rsplit("/", 1)[-1])

    def _close(self, url: Any, _body: Any) -> dict[str, Any]:
        known = self.deployments[url.path.rsplit("/", 1)[-1]]
        known["state"] = "closed"
        known["escrow"]["state"] = "closed"
        for lease in known["leases"]:
            lease["state"] = "closed"
        return {"data": {"success": True}}

    def _provider(self, url: Any, _body: Any) -> dict[str, Any]:
        address = url.path.rsplit("/", 1)[-1]
        provider = example(_schema("/v1/providers/{address}", "get", 200))
        host = self.provider_hosts.get(address, f"https://{address}.example:8443")
        return {**provider, "owner": address, "hostUri": host}  # not wrapped in `data`

    def _token(self, _url: Any, body: Any) -> dict[str, Any]:
        self.tokens.append(body["data"])
        return {"data": {"token": f"jwt-{len(self.tokens)}-secret"}}

    def _settings_data(self, dseq: str) -> dict[str, Any]:
        return {"data": self.settings[dseq]}

    def _settings_create(self, _url: Any, body: Any) -> dict[str, Any]:
        data = body["data"]
        user = data.get("userId", USER_ID)  # the key's user unless named
        if user != USER_ID or data["dseq"] in self.settings:
            self.violations.append(f"settings create: {data} (user {USER_ID}, exists?)")
        self.settings[data["dseq"]] = {
            "id": "7e1f0a52-0000-4000-8000-" + data["dseq"].rjust(12, "0"),
            "userId": user,
            "dseq": data["dseq"],
            "autoTopUpEnabled": bool(data.get("autoTopUpEnabled", False)),
            "estimatedTopUpAmount": 0,
            "topUpFrequencyMs": 3_600_000,
            "createdAt": "2026-12-06T00:00:00Z",
            "updatedAt": "2026-12-06T00:00:00Z",
        }
        return self._settings_data(data["dseq"])

    def _settings_target(self, url: Any) -> str:
        user = parse_qs(url.query).get("userId", [USER_ID])[0]  # the key's user unless named
        dseq = url.path.rsplit("/", 1)[-1]
        if user != USER_ID:
            self.violations.append(f"settings of user {user}, not {USER_ID}")
        return str(dseq)

    def _settings_get(self, url: Any, _body: Any) -> Any:
        dseq = self._settings_target(url)
        if dseq not in self.settings:
            return 404, {"message": "Deployment settings not found"}
        return self._settings_data(dseq)

    def _settings_patch(self, url: Any, body: Any) -> Any:
        dseq = self._settings_target(url)
        if dseq not in self.settings:
            return 404, {"message": "Deployment settings not found"}
        self.settings[dseq]["autoTopUpEnabled"] = bool(body["data"]["autoTopUpEnabled"])
        return self._settings_data(dseq)

    def run_auto_top_up(self, usd: float = 5.0) -> list[str]:
        """One Console top-up of each active deployment whose auto top-up is on; their dseqs."""
        topped = []
        for dseq, setting in self.settings.items():
            if setting["autoTopUpEnabled"] and self.deployments[dseq]["state"] == "active":
                self._deposit(None, {"data": {"dseq": dseq, "deposit": usd}})
                topped.append(dseq)
        return topped

    def _deposit(self, _url: Any, body: Any) -> dict[str, Any]:
        dseq = body["data"]["dseq"]
        escrow = self.escrow(dseq)
        added = round(float(body["data"]["deposit"]) * 1_000_000)
        escrow["funds"] += added
        escrow["deposits"].append(added)
        return self._view(dseq)

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(payload)))
        req.end_headers()
        req.wfile.write(payload)


def manifest_of(path: Path) -> str:
    return str(json.loads(path.read_text())["manifest"])


def sdl_env(console: ConsoleMock, dseq: str) -> dict[str, str]:
    """The environment of the agent service in the SDL a deployment was created with."""
    sdl = YAML(typ="safe").load(console.deployments[dseq]["sdl"])
    return dict(item.split("=", 1) for item in sdl["services"]["agent"]["env"])
