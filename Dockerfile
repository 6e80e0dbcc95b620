# syntax=docker/dockerfile:1
# One agent per container. Both stages install with deploy/setup.sh, the script `make setup`
# runs and CI tests, so the image installs what the tests ran.
#
#   docker build -t openforager/agent .                      # CPU (portable: GGML_NATIVE=off)
#   docker build -t openforager/agent:cuda --target cuda \
#     --build-arg CUDA_ARCHS="80;86;89;90" .                 # NVIDIA GPUs (A100, 30xx/40xx, H100)
#
# Every setting is an environment variable (FORAGER_*, OTEL_*), secrets included
# (FORAGER_WALLET__PASSWORD, an API key inside FORAGER_CHAIN__RPC_URL). The data dir is /data.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_DEVEL=nvidia/cuda:12.6.3-devel-ubuntu24.04
ARG CUDA_RUNTIME=nvidia/cuda:12.6.3-runtime-ubuntu24.04

# ---- CPU build -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . /src
ENV VENV=/opt/venv TOOLS=/opt/tools EXTRAS= EDITABLE=0 FORAGER_CACHE_DIR=/opt/cache \
    CMAKE_ARGS="-DGGML_NATIVE=off"
RUN bash deploy/setup.sh && rm -rf /opt/cache/wheels /opt/cache/sdist

# ---- CPU runtime (the default target) ----------------------------------------------------------
FROM ${PYTHON_IMAGE} AS cpu
RUN useradd --create-home --uid 10001 forager && mkdir -p /data && chown forager:forager /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/tools /opt/tools
COPY --from=build /opt/cache /opt/cache
ENV PATH=/opt/venv/bin:/opt/tools/bin:$PATH FORAGER_CACHE_DIR=/opt/cache \
    FORAGER_DATA_DIR=/data FORAGER_HTTP__HOST=0.0.0.0
USER forager
WORKDIR /home/forager
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["forager", "run"]

# ---- CUDA build ------------------------------------------------------------------------------
FROM ${CUDA_DEVEL} AS build-cuda
ARG CUDA_ARCHS="80;86;89;90"
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev \
       build-essential cmake git nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . /src
ENV VENV=/opt/venv TOOLS=/opt/tools EXTRAS= EDITABLE=0 FORAGER_CACHE_DIR=/opt/cache \
    CMAKE_ARGS="-DGGML_CUDA=on -DGGML_NATIVE=off -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHS}"
RUN bash deploy/setup.sh && rm -rf /opt/cache/wheels /opt/cache/sdist

# ---- CUDA runtime ----------------------------------------------------------------------------
FROM ${CUDA_RUNTIME} AS cuda
RUN apt-get update && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 forager && mkdir -p /data && chown forager:forager /data
COPY --from=build-cuda /opt/venv /opt/venv
COPY --from=build-cuda /opt/tools /opt/tools
COPY --from=build-cuda /opt/cache /opt/cache
ENV PATH=/opt/venv/bin:/opt/tools/bin:$PATH FORAGER_CACHE_DIR=/opt/cache \
    FORAGER_DATA_DIR=/data FORAGER_HTTP__HOST=0.0.0.0 FORAGER_MODEL__N_GPU_LAYERS=-1
USER forager
WORKDIR /home/forager
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["forager", "run"]

# The last stage is what a plain `docker build` produces: the CPU image.
FROM cpu
