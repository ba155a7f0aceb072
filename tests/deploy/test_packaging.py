"""Packaging checks that run without Docker or a cluster (this machine has no Docker daemon):

- hadolint (the pip-shipped binary) on both Dockerfiles;
- yamllint on deploy/ and docker-compose.yml;
- the Kubernetes manifests against the API's own OpenAPI schemas for 1.37, strict (unknown fields fail), with
  kubernetes-validate's bundled schemas (offline); it covers built-in kinds, not what a cluster's admission adds;
- what schemas cannot say: the probes hit /readyz and /healthz, the grace period outlasts preStop + drain, GPUs
  are requested, the HPA scales on the gauge falante exports, the ConfigMap's falante.toml is a valid config;
- `haproxy -c` on deploy/haproxy.cfg and the compose file's wiring (both replicas behind the proxy's backend).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from falante.config import Settings
from server.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
K8S = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))


def tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return str(path)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)


def manifests() -> dict[tuple[str, str], dict]:
    docs = [d for path in K8S for d in yaml.safe_load_all(path.read_text()) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfiles_pass_hadolint(dockerfile):
    result = run(tool("hadolint"), "--failure-threshold", "info", dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_yaml_passes_yamllint():
    result = run(tool("yamllint"), "--strict", "deploy", "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_k8s_manifests_match_the_api_schemas(tmp_path):
    validate = tool("kubernetes-validate")
    result = run(validate, "--strict", "--quiet", *map(str, K8S))
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yaml"  # the check can fail: a misspelt probe field is refused
    broken.write_text((ROOT / "deploy/k8s/falante.yaml").read_text().replace("readinessProbe:", "readynessProbe:"))
    assert run(validate, "--strict", "--quiet", str(broken)).returncode != 0


def test_k8s_falante_drains_probes_gpus_and_scales_on_sessions():
    objs = manifests()
    config = objs[("ConfigMap", "falante-config")]["data"]["falante.toml"]
    settings = Settings.model_validate(tomllib.loads(config))  # every key exists, every value is valid
    assert settings.llm.kind == "openai" and settings.llm.base_url.startswith("http://vllm:")
    pod = objs[("Deployment", "falante")]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    uvicorn_s = 5
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + settings.server.drain_grace_s + uvicorn_s
    assert objs[("PodDisruptionBudget", "falante")]["spec"]["selector"]["matchLabels"] == \
        objs[("Deployment", "falante")]["spec"]["selector"]["matchLabels"]
    hpa = objs[("HorizontalPodAutoscaler", "falante")]["spec"]
    metric = hpa["metrics"][0]["pods"]["metric"]["name"]
    assert metric in Metrics().render().decode()  # the gauge falante really exports
    assert int(hpa["metrics"][0]["pods"]["target"]["averageValue"]) < settings.limits.max_sessions
    assert metric in objs[("ConfigMap", "prometheus-adapter-falante")]["data"]["config.yaml"]
    vllm = objs[("Deployment", "vllm")]["spec"]["template"]["spec"]["containers"][0]
    assert vllm["resources"]["requests"]["nvidia.com/gpu"] == "1" and "--enable-prefix-caching" in vllm["args"]
    assert settings.llm.model == vllm["args"][vllm["args"].index("--served-model-name") + 1]
    assert ("Service", "vllm") in objs and ("Service", "falante") in objs


def test_haproxy_config_is_valid_and_compose_wires_it():
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.skip("Debian haproxy is not installed (scripts/install.sh --dev installs it)")
    result = run(haproxy, "-c", "-f", "deploy/haproxy.cfg")
    assert result.returncode == 0, result.stdout + result.stderr
    cfg = (ROOT / "deploy/haproxy.cfg").read_text()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    replicas = [name for name in compose["services"] if name.startswith("falante")]
    assert len(replicas) == 2 and all(f"server {name} {name}:8000" in cfg for name in replicas)
    assert "option httpchk GET /readyz" in cfg and "timeout tunnel" in cfg
    for name in replicas:
        env = compose["services"][name]["environment"]
        assert env["FALANTE_LLM__KIND"] == "openai" and env["FALANTE_LLM__BASE_URL"].startswith("http://vllm:")
        grace = float(env["FALANTE_SERVER__DRAIN_GRACE_S"])
        assert float(compose["services"][name]["stop_grace_period"].rstrip("s")) > grace + 5
    assert "./deploy/haproxy.cfg" in compose["services"]["haproxy"]["volumes"][0]
