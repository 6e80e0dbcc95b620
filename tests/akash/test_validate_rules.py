"""SDL rules of Akash's Go parser (chain-sdk `go/sdl`) that the schema alone lets through.

Each test breaks one rule in an otherwise valid SDL that the schema accepts, and checks that the
validator names the path and what it expected; where it is cheap, a valid variant passes.
"""

from __future__ import annotations

from typing import Any

import pytest

from akash.validate import find_schema, load_schema, load_yaml, schema_problems, validate_document
from tests.conftest import REPO

SCHEMA = load_schema(find_schema(REPO))

BASE = """
version: "2.1"
services:
  web:
    image: nginx:1.27
    env: [GREETING=hello]
    expose:
      - port: 8080
        as: 80
        accept: [web.example.com]
        to: [{global: true}]
profiles:
  compute:
    web:
      resources:
        cpu: {units: 0.5}
        memory: {size: 512Mi}
        storage:
          - size: 1Gi
  placement:
    akash:
      attributes: {region: us-west}
      pricing:
        web: {denom: uact, amount: 1000}
deployment:
  web:
    akash: {profile: web, count: 1}
"""


def base() -> dict[str, Any]:
    doc = load_yaml(BASE)
    assert isinstance(doc, dict)
    return doc


def resources(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["profiles"]["compute"]["web"]["resources"]


def add_api(doc: dict[str, Any], expose: list[dict[str, Any]]) -> dict[str, Any]:
    """A second service, `api`, on the `web` compute profile in the same placement."""
    doc["services"]["api"] = {"image": "api:1", "expose": expose}
    doc["deployment"]["api"] = {"akash": {"profile": "web", "count": 1}}
    return doc


def rejected(doc: dict[str, Any], *parts: str) -> None:
    """The schema accepts `doc`; the validator names every one of `parts` in one problem."""
    assert schema_problems(doc, SCHEMA) == []
    problems = validate_document(doc, SCHEMA)
    assert any(all(part in problem for part in parts) for problem in problems), problems


def valid(doc: dict[str, Any]) -> None:
    assert validate_document(doc, SCHEMA) == []


def test_the_base_document_is_valid():
    """The document every case below breaks passes on its own."""
    valid(base())


def test_an_ip_endpoint_carries_a_port_for_one_service():
    """Two services on one IP endpoint with the same external port and protocol are rejected."""
    doc = base()
    doc["endpoints"] = {"edge": {"kind": "ip"}}
    doc["services"]["web"]["expose"][0]["to"] = [{"global": True, "ip": "edge"}]
    add_api(doc, [{"port": 9090, "as": 80, "to": [{"global": True, "ip": "edge"}]}])
    rejected(doc, "services.web.expose[0].to[0].ip", "port 80/TCP for service 'api'")
    doc["services"]["api"]["expose"][0]["as"] = 81
    valid(doc)


def test_registry_credentials_must_not_be_blank():
    """A credentials host, username or password of spaces is rejected; real values pass."""
    doc = base()
    credentials = {"host": "   ", "username": "me", "password": "secret-1"}
    doc["services"]["web"]["credentials"] = credentials
    rejected(doc, "services.web.credentials.host: blank; expected a value")
    credentials["host"] = "ghcr.io"
    valid(doc)


def persistent_volumes(doc: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    resources(doc)["storage"] += [
        {"name": name, "size": "1Gi", "attributes": {"persistent": True, "class": "beta2"}}
        for name in names
    ]
    mounts = {name: {"mount": f"/{name}"} for name in names}
    doc["services"]["web"]["params"] = {"storage": mounts}
    return mounts


def test_two_volumes_cannot_share_a_mount_point():
    """Two volumes of a service mounted on the same path are rejected."""
    doc = base()
    mounts = persistent_volumes(doc, ("data", "logs"))
    valid(doc)
    mounts["logs"]["mount"] = "/data"
    rejected(doc, "services.web.params.storage.logs.mount: '/data'", "volume 'data'")


def test_a_ram_volume_cannot_be_read_only_in_sdl_2_1():
    """SDL 2.1 rejects `readOnly: true` on a ram volume; SDL 2.0 did not check it."""
    doc = base()
    resources(doc)["storage"].append(
        {"name": "shm", "size": "1Gi", "attributes": {"class": "ram", "persistent": False}}
    )
    doc["services"]["web"]["params"] = {"storage": {"shm": {"mount": "/scratch", "readOnly": True}}}
    rejected(doc, "services.web.params.storage.shm.readOnly: a ram volume cannot be read-only")
    doc["version"] = "2.0"
    valid(doc)


def test_volume_names_are_unique():
    """Two unnamed volumes are both `default`, which is rejected."""
    doc = base()
    resources(doc)["storage"].append({"size": "2Gi"})
    rejected(doc, "resources.storage[1]: volume name 'default' is already used by")


def test_storage_class_must_be_known():
    """A storage class other than default, beta1-3 or ram is rejected."""
    doc = base()
    persistent_volumes(doc, ("data",))
    resources(doc)["storage"][1]["attributes"]["class"] = "ssd"
    rejected(doc, "storage[1].attributes.class: 'ssd' is not a storage class; expected beta1")


def test_persistent_must_be_a_boolean():
    """`persistent` must read as a boolean (true/false, on/off, yes/no)."""
    doc = base()
    resources(doc)["storage"].append(
        {"name": "tmp", "size": "1Gi", "attributes": {"class": "ram", "persistent": "never"}}
    )
    rejected(doc, "storage[1].attributes.persistent: 'never' is not a boolean; expected true")


def test_a_ram_volume_must_say_persistent_false():
    """A ram volume whose `persistent` is anything but false (here `on`) is rejected."""
    doc = base()
    resources(doc)["storage"].append(
        {"name": "tmp", "size": "1Gi", "attributes": {"class": "ram", "persistent": "on"}}
    )
    rejected(doc, "storage[1].attributes.persistent: a ram volume must be persistent: false")


@pytest.mark.parametrize("units", ["1.5m", "2x", "1k"])
def test_cpu_units_are_cpus_or_whole_thousandths(units: str):
    """CPU units other than a number of CPUs or whole thousandths (`250m`) are rejected."""
    doc = base()
    resources(doc)["cpu"]["units"] = units
    rejected(doc, f"resources.cpu.units: {units!r} is not a CPU quantity; expected CPUs")


@pytest.mark.parametrize("units", ["250m", "0.25", 2])
def test_cpu_units_that_parse_pass(units: str | int):
    """Thousandths, decimal strings and numbers are all CPU quantities."""
    doc = base()
    resources(doc)["cpu"]["units"] = units
    valid(doc)


def test_cpu_attributes_are_only_arch():
    """A CPU attribute other than `arch` is rejected; `arch` passes."""
    doc = base()
    resources(doc)["cpu"]["attributes"] = {"arch": "amd64"}
    valid(doc)
    resources(doc)["cpu"]["attributes"]["vendor"] = "intel"
    rejected(doc, "resources.cpu.attributes.vendor: not a CPU attribute; expected only arch")


@pytest.mark.parametrize(("key", "size"), [("memory", "512MB"), ("storage", "1gb")])
def test_sizes_must_have_a_known_unit(key: str, size: str):
    """Memory and storage sizes with an unknown unit are rejected."""
    doc = base()
    part = resources(doc)[key]
    (part[0] if isinstance(part, list) else part)["size"] = size
    rejected(doc, f"{size!r} is not a size; expected a number with an optional unit")


def test_sizes_in_decimal_and_binary_units_pass():
    """`0.5Gi`, `1G` and a plain number of bytes are all sizes."""
    doc = base()
    resources(doc)["memory"]["size"] = "0.5Gi"
    resources(doc)["storage"][0]["size"] = "1G"
    valid(doc)
    resources(doc)["storage"][0]["size"] = "1073741824"
    valid(doc)


def gpu(doc: dict[str, Any], units: Any, models: list[dict[str, Any]]) -> dict[str, Any]:
    part = {"units": units, "attributes": {"vendor": {"nvidia": models}}}
    resources(doc)["gpu"] = part
    return part


def test_gpu_units_are_whole():
    """Fractional GPU units are rejected."""
    doc = base()
    gpu(doc, "1.5", [{"model": "h100"}])
    rejected(doc, "resources.gpu.units: '1.5'; expected a whole number of GPUs")


def test_gpu_attributes_name_a_vendor():
    """GPU attributes without `vendor` are rejected."""
    doc = base()
    gpu(doc, 1, [])["attributes"] = {}
    rejected(doc, "resources.gpu.attributes.vendor: missing; expected the vendor")


def test_gpu_models_become_valid_attributes_once():
    """A model with a space, or the same model twice, is rejected; distinct models pass."""
    doc = base()
    models = [{"model": "h100", "ram": "80Gi", "interface": "sxm"}, {"model": "a100"}]
    gpu(doc, 1, models)
    valid(doc)
    models[1]["model"] = "rtx 4090"
    rejected(doc, "vendor.nvidia[1].model: 'rtx 4090' gives the provider attribute")
    models[1] = dict(models[0])
    rejected(doc, "vendor.nvidia[1]: the same GPU as", "nvidia[0]; expected each model once")


def test_placement_attributes_are_single_values():
    """A placement attribute given as a list is rejected."""
    doc = base()
    doc["profiles"]["placement"]["akash"]["attributes"]["region"] = ["us-west", "us-east"]
    rejected(doc, "profiles.placement.akash.attributes.region: expected one value")


def test_a_price_is_above_zero():
    """A price of 0 is rejected."""
    doc = base()
    doc["profiles"]["placement"]["akash"]["pricing"]["web"]["amount"] = 0
    rejected(doc, "pricing.web.amount: 0 is zero; expected a price above 0")


def test_a_price_has_at_most_18_decimals():
    """A price with more than 18 decimal places is rejected; 18 pass."""
    doc = base()
    price = doc["profiles"]["placement"]["akash"]["pricing"]["web"]
    price["amount"] = "0." + "1" * 18
    valid(doc)
    price["amount"] += "1"
    rejected(doc, "pricing.web.amount:", "expected at most 18 decimal places")


def test_a_price_is_at_most_the_unit_maximum():
    """A price above 10,000,000 per instance is rejected for a deployed profile only."""
    doc = base()
    pricing = doc["profiles"]["placement"]["akash"]["pricing"]
    pricing["spare"] = {"denom": "uact", "amount": 20_000_000}
    valid(doc)
    pricing["web"]["amount"] = 10_000_001
    rejected(doc, "pricing.web.amount: 10000001; expected at most 10000000")


def test_a_deployment_pays_in_one_denomination():
    """Two placement groups priced in different denominations are rejected."""
    doc = base()
    placement = doc["profiles"]["placement"]
    placement["edge"] = {"pricing": {"web": {"denom": "uakt", "amount": 100}}}
    add_api(doc, [{"port": 9090}])
    doc["deployment"]["api"] = {"edge": {"profile": "web", "count": 1}}
    rejected(doc, "profiles.placement.edge.pricing.web.denom: 'uakt'", "'uact'")
    placement["edge"]["pricing"]["web"]["denom"] = "uact"
    valid(doc)


def test_a_deployment_places_a_service():
    """An empty `deployment` is rejected."""
    doc = base()
    doc["deployment"] = {}
    rejected(doc, "deployment: places no service; expected")


@pytest.mark.parametrize(
    ("part", "key", "value", "where"),
    [
        ("cpu", "units", "5m", "resources.cpu.units: '5m' is 5m; expected between 10m and 384"),
        ("cpu", "units", 400, "resources.cpu.units: 400 is 400000m; expected between"),
        ("memory", "size", "512Ki", "resources.memory.size: '512Ki' is 524288 bytes; expected"),
    ],
)
def test_an_instance_stays_within_the_chain_limits(part: str, key: str, value: Any, where: str):
    """CPU and memory outside the per-instance limits are rejected."""
    doc = base()
    resources(doc)[part][key] = value
    rejected(doc, where)


def test_volumes_and_gpus_stay_within_the_chain_limits():
    """A volume under 5Mi and more than 24 GPUs per instance are rejected."""
    doc = base()
    resources(doc)["storage"][0]["size"] = "1Mi"
    gpu(doc, 25, [{"model": "h100"}])
    rejected(doc, "resources.storage[0].size: '1Mi' is 1048576 bytes; expected between 5Mi")
    rejected(doc, "resources.gpu.units: 25 GPUs; expected at most 24 per instance")


def test_limits_apply_only_to_deployed_profiles():
    """A compute profile no deployment uses may exceed the limits, as on chain."""
    doc = base()
    spare = {"cpu": {"units": "1m"}, "memory": {"size": "1Ki"}, "storage": {"size": "1Ki"}}
    doc["profiles"]["compute"]["spare"] = {"resources": spare}
    valid(doc)


def test_a_placement_group_stays_within_the_group_limits():
    """300 CPUs times 100 instances in one placement group is rejected."""
    doc = base()
    resources(doc)["cpu"]["units"] = 300
    doc["deployment"]["web"]["akash"]["count"] = 100
    rejected(doc, "profiles.placement.akash:", "expected at most 19200 CPUs per placement group")


def test_a_deployed_profile_has_a_volume():
    """A deployed compute profile with `storage: []` is rejected."""
    doc = base()
    resources(doc)["storage"] = []
    rejected(doc, "resources.storage: no volume; expected at least one")


@pytest.mark.parametrize("name", ["Web", "web_1", "1web", "web-"])
def test_a_deployed_service_has_a_dns_name(name: str):
    """A deployed service named other than lowercase letters, digits and '-' is rejected."""
    doc = base()
    doc["services"] = {name: doc["services"]["web"]}
    doc["deployment"] = {name: doc["deployment"]["web"]}
    rejected(doc, f"services.{name}: {name!r} is not a valid service name; expected lowercase")


@pytest.mark.parametrize("item", ["1ST=x", "=x", "MY VAR=x", "..X=1"])
def test_environment_variables_have_valid_names(item: str):
    """An env entry whose name is empty, starts with a digit or '..', or has a space is rejected."""
    doc = base()
    doc["services"]["web"]["env"].append(item)
    rejected(doc, "services.web.env[1]:", "is not a variable name; expected NAME=value")


def test_accepted_hostnames_are_dns_names():
    """An accepted hostname with capitals or '_' is rejected."""
    doc = base()
    doc["services"]["web"]["expose"][0]["accept"] = ["Web_App.example.com"]
    rejected(doc, "expose[0].accept[0]: 'Web_App.example.com' is not a hostname; expected")


def test_a_hostname_is_accepted_once_per_deployment():
    """The same hostname on two services, or on an expose with two `to` entries, is rejected."""
    doc = base()
    add_api(doc, [{"port": 9090, "accept": ["web.example.com"], "to": [{"global": True}]}])
    rejected(doc, "services.web.expose[0].accept[0]: 'web.example.com' is accepted more than")
    doc["services"]["api"]["expose"][0]["accept"] = ["api.example.com"]
    valid(doc)
    doc["services"]["web"]["expose"][0]["to"].append({"service": "api"})
    rejected(doc, "services.web.expose[0].accept[0]", "each `to` entry and each placement")


def test_some_deployed_service_is_exposed_to_global():
    """A deployment with no service exposed to global is rejected."""
    doc = base()
    doc["services"]["web"]["expose"][0]["to"] = [{"service": "web"}]
    rejected(doc, "services: no deployed service is exposed to global")


def test_tee_cpu_gpu_needs_a_gpu():
    """`tee: cpu-gpu` on a profile without GPU units is rejected; with a GPU it passes."""
    doc = base()
    doc["services"]["web"]["params"] = {"tee": "cpu-gpu"}
    rejected(doc, "services.web.params.tee: 'cpu-gpu' needs a GPU, but compute profile 'web'")
    gpu(doc, 1, [{"model": "h100"}])
    valid(doc)


def test_a_placement_group_has_one_tee_type():
    """Two services with different TEE types in one placement group are rejected."""
    doc = base()
    doc["services"]["web"]["params"] = {"tee": "cpu"}
    add_api(doc, [{"port": 9090}])["services"]["api"]["params"] = {"tee": "cpu-gpu"}
    gpu(doc, 1, [{"model": "h100"}])
    rejected(doc, "services.web.params.tee: 'cpu' conflicts with 'cpu-gpu' of service 'api'")
    doc["services"]["web"]["params"]["tee"] = "cpu-gpu"
    valid(doc)


def test_an_endpoint_used_only_by_an_undeployed_service_is_unused():
    """An IP endpoint counts as used only when a deployed service exposes to it."""
    doc = base()
    doc["endpoints"] = {"edge": {"kind": "ip"}}
    expose = [{"port": 9090, "as": 90, "to": [{"global": True, "ip": "edge"}]}]
    doc["services"]["idle"] = {"image": "idle:1", "expose": expose}
    rejected(doc, "endpoints.edge: declared but no service exposes to it")
    add_api(doc, expose)
    valid(doc)
