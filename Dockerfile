# syntax=docker/dockerfile:1
# A CPU image of one agent. It installs with deploy/setup.sh, the same script `make setup` runs,
# so what CI tests is what the image installs. (Minimal here: a later issue adds the CUDA
# target, a smaller runtime stage and the Akash wiring.)
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git nodejs npm \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 forager
WORKDIR /app
COPY --chown=forager:forager . /app
USER forager

ENV VENV=/app/.venv TOOLS=/app/.tools EXTRAS= EDITABLE=0 \
    FORAGER_CACHE_DIR=/home/forager/.cache/openforager \
    FORAGER_DATA_DIR=/data \
    FORAGER_HTTP__HOST=0.0.0.0
RUN bash deploy/setup.sh
ENV PATH=/app/.tools/bin:/app/.venv/bin:$PATH

USER root
RUN mkdir -p /data && chown forager:forager /data
USER forager
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["forager", "run"]
