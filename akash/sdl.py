"""Render an Akash SDL 2.0 document for one agent.

The HTTP port is published as `port: 8080, as: 80` to global (only a global expose on port 80
gets the provider's hostname); the data dir can live on a persistent volume; GPU units name
their NVIDIA model. Pricing is a per-block maximum in `uact` (or `uakt`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML

SERVICE = "agent"
PLACEMENT = "akash"
HTTP_PORT = 8080
DATA_MOUNT = "/data"


@dataclass(frozen=True)
class SdlOptions:
    """What an operator chooses for the lease."""

    image: str = "openforager/agent:latest"
    cpu: float = 1.0
    memory: str = "2Gi"
    storage: str = "4Gi"
    persistent: bool = False
    persistent_size: str = "2Gi"
    persistent_class: str = "beta2"
    gpu: str | None = None
    gpu_ram: str | None = None
    price: int = 1_000
    denom: str = "uact"
    env: Mapping[str, str] = field(default_factory=dict)


def agent_env(options: SdlOptions, settings_env: Mapping[str, str]) -> list[str]:
    """The container's environment: the agent's settings, then what the operator added."""
    env = {
        "FORAGER_HTTP__HOST": "0.0.0.0",  # noqa: S104 -- inside the container, behind the provider
        "FORAGER_HTTP__PORT": str(HTTP_PORT),
        "FORAGER_DATA_DIR": DATA_MOUNT,
        **settings_env,
        **options.env,
    }
    if options.gpu:
        env.setdefault("FORAGER_MODEL__N_GPU_LAYERS", "-1")
    return [f"{key}={value}" for key, value in env.items()]


def _resources(options: SdlOptions) -> dict[str, Any]:
    storage: Any = {"size": options.storage}
    if options.persistent:
        storage = [
            {"size": options.storage},
            {
                "name": "data",
                "size": options.persistent_size,
                "attributes": {"persistent": True, "class": options.persistent_class},
            },
        ]
    resources: dict[str, Any] = {
        "cpu": {"units": options.cpu},
        "memory": {"size": options.memory},
        "storage": storage,
    }
    if options.gpu:
        model: dict[str, str] = {"model": options.gpu}
        if options.gpu_ram:
            model["ram"] = options.gpu_ram
        resources["gpu"] = {"units": 1, "attributes": {"vendor": {"nvidia": [model]}}}
    return resources


def render_document(options: SdlOptions, settings_env: Mapping[str, str]) -> dict[str, Any]:
    """The SDL as a mapping (pure)."""
    service: dict[str, Any] = {
        "image": options.image,
        "env": agent_env(options, settings_env),
        "expose": [{"port": HTTP_PORT, "as": 80, "to": [{"global": True}]}],
    }
    if options.persistent:
        service["params"] = {"storage": {"data": {"mount": DATA_MOUNT, "readOnly": False}}}
    return {
        "version": "2.0",
        "services": {SERVICE: service},
        "profiles": {
            "compute": {SERVICE: {"resources": _resources(options)}},
            "placement": {
                PLACEMENT: {"pricing": {SERVICE: {"denom": options.denom, "amount": options.price}}}
            },
        },
        "deployment": {SERVICE: {PLACEMENT: {"profile": SERVICE, "count": 1}}},
    }


def to_yaml(document: Mapping[str, Any]) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    out = io.StringIO()
    yaml.dump(dict(document), out)
    return "---\n" + out.getvalue()


def render_sdl(options: SdlOptions, settings_env: Mapping[str, str]) -> str:
    return to_yaml(render_document(options, settings_env))


def cli_commands(sdl_file: str, dseq: str = "$DSEQ", provider: str = "$PROVIDER") -> Sequence[str]:
    """The self-custody sequence with the `provider-services` CLI for a rendered SDL."""
    cli = "provider-services"
    node = "--node $AKASH_NODE"
    key = f"--from $AKASH_KEY_NAME {node}"
    tx = f"--from $AKASH_KEY_NAME --chain-id $AKASH_CHAIN_ID {node} -y"
    lease = f"--dseq {dseq} --gseq 1 --oseq 1 --provider {provider}"
    owner = "--owner $AKASH_ACCOUNT_ADDRESS"
    return (
        f"{cli} tx deployment create {sdl_file} {tx}",
        f"{cli} query market bid list {owner} --dseq {dseq} --state open {node}",
        f"{cli} tx market lease create {lease} {tx}",
        f"{cli} send-manifest {sdl_file} {lease} {key}",
        f"{cli} lease-status {lease} {key}",
        f"{cli} lease-logs {lease} {key} --follow",
        f"{cli} tx escrow deposit deployment 5000000uact --dseq {dseq} {tx}",
        f"{cli} tx deployment close --dseq {dseq} {tx}",
    )
