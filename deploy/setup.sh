#!/usr/bin/env bash
# Installs everything an agent needs, idempotently. Used by `make setup` and by the Dockerfile,
# so what CI tests is what the image installs.
#
#   VENV     virtualenv to create/use            (default: .venv)
#   TOOLS    where npm installs anvil and cast   (default: .tools)
#   EXTRAS   pip extras of the project           (default: dev,train; empty for an image)
#   EDITABLE 1 installs the project editable     (default: 1)
#   FORAGER_CACHE_DIR  wheel, model and contract cache (default: ~/.cache/openforager)
#   CMAKE_ARGS         passed to the llama.cpp build (e.g. -DGGML_CUDA=on); part of the cache key.
#                      Default -DGGML_NATIVE=off: a portable build (AVX2, FMA, F16C). A native
#                      build on a CPU with AMX compiled ggml's AMX kernels, which crashed at the
#                      first decode on such a machine (SIGSEGV in ggml_backend_amx_mul_mat).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
TOOLS=${TOOLS:-$ROOT/.tools}
EXTRAS=${EXTRAS-dev,train}
EDITABLE=${EDITABLE:-1}
CACHE=${FORAGER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openforager}
LLAMA_VERSION=0.3.36
ANVIL_VERSION=1.7.1

say() { printf '[setup] %s\n' "$*" >&2; }

# 1. Python environment.
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  python3 -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

# 2. llama-cpp-python has no wheels on PyPI: build it once per build flags, keep the wheel.
export CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=off}
flags_key=$(printf '%s' "$CMAKE_ARGS" | sha256sum | cut -c1-12)
WHEELS="$CACHE/wheels/llama-$LLAMA_VERSION-$flags_key"
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  say "building llama-cpp-python $LLAMA_VERSION from source (about 3-15 minutes, once)"
  # --no-cache-dir: pip's own wheel cache would hand back a wheel built with other flags.
  "${PIP[@]}" wheel --no-cache-dir --no-deps --wheel-dir "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
fi
# A virtualenv that holds a build with other flags gets this one (same version: pip keeps it).
if [ "$(cat "$VENV/.llama-flags" 2>/dev/null)" != "$flags_key" ]; then
  "${PIP[@]}" install -q --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
  echo "$flags_key" >"$VENV/.llama-flags"
fi

# 2b. llama.cpp's own server, from the same llama.cpp source and flags as the wheel: the model
#     server a fleet can share (`llama-server`). Offline: no web UI download, no HTTPS client.
SERVER="$CACHE/llama-server/$LLAMA_VERSION-$flags_key"
if [ ! -x "$SERVER/llama-server" ]; then
  say "building llama-server $LLAMA_VERSION from the same source (about 5-15 minutes, once)"
  sdist="$CACHE/sdist/llama_cpp_python-$LLAMA_VERSION.tar.gz"
  if [ ! -f "$sdist" ]; then
    "${PIP[@]}" download -q --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_VERSION" -d "$CACHE/sdist"
  fi
  work=$(mktemp -d)
  tar xzf "$sdist" -C "$work" "llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp"
  src="$work/llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp"
  # shellcheck disable=SC2086 # CMAKE_ARGS is a list of flags
  if ! { cmake -S "$src" -B "$work/build" $CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release \
           -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF \
           -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
         && cmake --build "$work/build" -t llama-server -j "$(nproc)"; } >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    say "llama-server did not build (the log's end is above)"
    exit 1
  fi
  mkdir -p "$SERVER.tmp.$$"
  cp "$work/build/bin/llama-server" "$SERVER.tmp.$$/"
  mv "$SERVER.tmp.$$" "$SERVER"  # whole or not at all
  rm -rf "$work"
fi

# 3. The project and its pinned dependencies.
target="$ROOT"
[ -n "$EXTRAS" ] && target="$ROOT[$EXTRAS]"
editable=()
[ "$EDITABLE" = "1" ] && editable=(-e)
say "installing the project into $VENV"
"${PIP[@]}" install -q --find-links "$WHEELS" -c "$ROOT/constraints.txt" "${editable[@]}" "$target"

# 4. The chain: anvil (and cast, an independent client for tests) pinned from npm.
if [ ! -x "$TOOLS/bin/anvil" ] || ! "$TOOLS/bin/anvil" --version | grep -q "$ANVIL_VERSION"; then
  say "installing anvil and cast $ANVIL_VERSION from npm"
  mkdir -p "$TOOLS/bin"
  npm install --prefix "$TOOLS" --no-audit --no-fund --silent \
    "@foundry-rs/anvil@$ANVIL_VERSION" "@foundry-rs/cast@$ANVIL_VERSION"
  platform=$(node -p 'process.platform + "-" + ({x64: "amd64", arm64: "arm64"}[process.arch] || process.arch)')
  for tool in anvil cast; do
    ln -sf "../node_modules/@foundry-rs/$tool-$platform/bin/$tool" "$TOOLS/bin/$tool"
  done
fi
# Beside the venv's python too: `.venv/bin/forager` then finds them without .tools/bin on PATH.
for tool in anvil cast; do
  ln -sf "$TOOLS/bin/$tool" "$VENV/bin/$tool"
done
ln -sf "$SERVER/llama-server" "$VENV/bin/llama-server"

# 5. A headless browser for the dashboard test (development installs only): Debian's chromium.
if [[ ",$EXTRAS," == *",dev,"* ]] && ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing Debian's chromium (the browser of the dashboard test)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    say "warning: no chromium and no root apt-get: install chromium for the dashboard test"
  fi
fi

# 6. The default model, verified by SHA-256.
say "fetching the default model"
"$VENV/bin/forager" model fetch --cache-dir "$CACHE" >/dev/null
say "ready: $("$TOOLS/bin/anvil" --version | head -1), model in $CACHE/models"
