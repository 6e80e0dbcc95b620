"""SDL: the shared Akash cases and every document the renderer makes, through the validator."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from akash.sdl import HTTP_PORT, SdlOptions, render_document, render_sdl
from akash.validate import find_schema, load_schema, load_yaml, validate_document, validate_text
from tests.conftest import REPO

SCHEMA_PATH = find_schema(REPO)
CASES = SCHEMA_PATH.parent / "sdl-cases"
SCHEMA = load_schema(SCHEMA_PATH)

VALID = sorted(CASES.glob("v2.*/*/input.yaml"))
REJECTED = {
    "invalid/count-zero.yaml": "deployment.web.akash.count: 0 is less than the minimum of 1",
    "invalid/credentials-missing-host.yaml": "services.web.credentials: 'host' is a required",
    "invalid/endpoint-not-used.yaml": "endpoints.myendpoint: declared but no service exposes",
    "invalid/invalid-endpoint-name.yaml": "'Invalid-Name' does not match",
    "invalid/invalid-protocol.yaml": "services.web.expose[0].proto: 'HTTP' is not one of",
    "invalid/ip-without-global.yaml": "services.web.expose[0].to[0]: 'global' is a required",
    "invalid/missing-image.yaml": "services.web: 'image' is a required property",
    "invalid/missing-memory-size.yaml": "resources.memory: 'size' is a required property",
    "invalid/missing-version.yaml": "(document): 'version' is a required property",
    "invalid/negative-cpu.yaml": "resources.cpu.units: '-100m' does not match",
    "invalid/port-too-high.yaml": "expose[0].port: 99999 is greater than the maximum of 65535",
    "invalid/port-zero.yaml": "expose[0].port: 0 is less than the minimum of 1",
    "invalid/unknown-field.yaml": "'unknown_field' was unexpected",
    "invalid/v2.1-reclamation-bad-window.yaml": "reclamation.min_window: '0s' does not match",
    "schema-only-invalid/email-too-short.yaml": "credentials.email: 'a@b' is too short",
    "schema-only-invalid/invalid-denom.yaml": "denom: 'invalidtoken' is not one of",
    "schema-only-invalid/invalid-version.yaml": "version: '3.0' is not one of ['2.0', '2.1']",
    "schema-only-invalid/password-too-short.yaml": "credentials.password: 'pass' is too short",
}


def test_every_shared_invalid_case_is_listed():
    """No case under invalid/ or schema-only-invalid/ escapes this test."""
    found = {str(p.relative_to(CASES)) for p in CASES.glob("*invalid*/*.yaml")}
    assert found == set(REJECTED)


@pytest.mark.parametrize("case", VALID, ids=lambda p: str(p.parent.relative_to(CASES)))
def test_valid_cases_validate(case: Path):
    """Every SDL the Go parser accepts passes schema and semantic checks."""
    assert validate_text(case.read_text(), SCHEMA, str(case)) == []


@pytest.mark.parametrize(("case", "reason"), sorted(REJECTED.items()))
def test_invalid_cases_are_rejected_for_the_right_reason(case: str, reason: str):
    """Each invalid case fails, and a problem names the offending path and rule."""
    problems = validate_text((CASES / case).read_text(), SCHEMA, case)
    assert any(reason in p for p in problems), problems


def test_yaml_1_2_keeps_off_a_string():
    """`off` stays a string (YAML 1.1 would make it False and break the schema's enum)."""
    assert load_yaml("retry: off\nflag: true\n") == {"retry": "off", "flag": True}


MATRIX = list(
    itertools.product([None, "h100", "rtx4090"], [False, True], ["uact", "uakt"], [0.5, 2.0])
)


@pytest.mark.parametrize(("gpu", "persistent", "denom", "cpu"), MATRIX)
def test_every_rendered_sdl_validates(gpu: str | None, persistent: bool, denom: str, cpu: float):
    """The renderer's output is valid for every combination of options."""
    options = SdlOptions(
        gpu=gpu,
        gpu_ram="24Gi" if gpu == "rtx4090" else None,
        persistent=persistent,
        denom=denom,
        cpu=cpu,
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
    )
    text = render_sdl(options, {"FORAGER_INTERVAL_S": "5"})
    assert validate_text(text, SCHEMA) == []
    doc = load_yaml(text)
    expose = doc["services"]["agent"]["expose"][0]
    assert (expose["port"], expose["as"], expose["to"]) == (HTTP_PORT, 80, [{"global": True}])
    env = doc["services"]["agent"]["env"]
    assert "FORAGER_HTTP__HOST=0.0.0.0" in env and "FORAGER_INTERVAL_S=5" in env
    assert doc["profiles"]["placement"]["akash"]["pricing"]["agent"]["denom"] == denom
    storage = doc["profiles"]["compute"]["agent"]["resources"]["storage"]
    assert isinstance(storage, list) is persistent


def test_semantic_rules_catch_what_the_schema_cannot():
    """Broken references, unmounted persistent volumes and bad GPU memory units are caught."""
    doc = render_document(SdlOptions(persistent=True, gpu="h100", gpu_ram="80GB"), {})
    del doc["services"]["agent"]["params"]
    doc["deployment"]["agent"]["akash"]["profile"] = "missing"
    problems = validate_document(doc, SCHEMA)
    assert any("'missing' is not in profiles.compute" in p for p in problems)
    assert any("no price for profile 'missing'" in p for p in problems)
    doc = render_document(SdlOptions(persistent=True, gpu="h100", gpu_ram="80GB"), {})
    del doc["services"]["agent"]["params"]
    problems = validate_document(doc, SCHEMA)
    assert any("persistent volume 'data' is not mounted" in p for p in problems)
    assert any("ram: '80GB' must use Gi-style units" in p for p in problems)


def test_cli_renders_and_validates(tmp_path: Path):
    """`forager akash sdl --out` then `forager akash validate` says valid; a bad file exits 1."""
    out = tmp_path / "deploy.yaml"
    cli = [sys.executable, "-m", "agent.cli", "akash"]
    made = subprocess.run(
        [*cli, "sdl", "--gpu", "h100", "--persistent", "--price", "5000", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    checked = subprocess.run(
        [*cli, "validate", str(out)], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0 and checked.stdout.strip().endswith("valid")
    bad = CASES / "invalid/port-zero.yaml"
    rejected = subprocess.run(
        [*cli, "validate", str(bad)], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert rejected.returncode == 1 and "expose[0].port" in rejected.stdout
    env = subprocess.run(
        [*cli, "sdl", "--env", "NOEQUALS"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert env.returncode == 2 and "expected KEY=VALUE" in env.stderr
