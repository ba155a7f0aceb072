"""Fuzz: random event objects never crash a session; each gets a well-formed reply or an `error`."""

import asyncio
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.metrics import Metrics
from server.protocol import CLIENT_EVENT_TYPES
from server.session import Session
from tests.conftest import fake_backends, fast_settings
from tests.fakes import FakeLLM

# text with lone surrogates too: JSON can escape them ("\\ud800"), and they once killed the session's writer
any_text = st.text(max_size=20) | st.text(st.sampled_from("a ç\ud800\udfff"), max_size=4)
json_leaf = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | any_text
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4) |
                          st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
field_names = st.sampled_from(["session", "audio", "item", "item_id", "content_index", "audio_end_ms", "response",
                               "response_id", "event_id", "previous_item_id", "instructions", "voice", "x"])
event = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(CLIENT_EVENT_TYPES)) | st.text(max_size=30)},
    optional={"event_id": any_text | st.integers()},
).flatmap(lambda base: st.dictionaries(field_names, json_value, max_size=4).map(lambda extra: {**extra, **base}))


async def _drive(events: list) -> list[dict]:
    sent: list[str] = []

    async def send_text(text: str) -> None:
        text.encode()  # as the websocket does: UTF-8 (a lone surrogate raised here and killed the writer)
        sent.append(text)

    session = Session(fake_backends(), fast_settings(), Metrics(), send_text)
    writer = asyncio.create_task(session.outbox.run())
    await session.open()
    for ev in events:
        await session.handle_message(ev if isinstance(ev, str) else json.dumps(ev))
    await session.close()
    session.outbox.close()
    await asyncio.wait_for(writer, 5)
    return [json.loads(s) for s in sent]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event | any_text, min_size=1, max_size=5))
def test_random_events_never_crash(events):
    replies = asyncio.run(_drive(events))
    assert replies[0]["type"] == "session.created"
    for reply in replies:
        assert isinstance(reply.get("type"), str) and reply.get("event_id")
        if reply["type"] == "error":
            assert set(reply["error"]) >= {"type", "code", "message", "event_id"}
            assert reply["error"]["type"] != "server_error", reply  # internal_error etc.: a server bug, not an answer


# ------------------------------------------------------------------------------------------------ over the wire
# Seeded random-but-plausible client events against the real websocket server (fake models): each connection sends
# FUZZ_EVENTS_PER_CONNECTION events, each followed by a marker event whose `error` answer delimits what the server
# said to that event. Odd leaves are spliced into the JSON text as raw literals (NaN, 1e999, 2**63, 5000 digits,
# escaped lone surrogates, NUL, 10k-character strings, deep nesting), and some frames are binary.
FUZZ_SEED = int(os.environ.get("FALANTE_FUZZ_SEED", "20261203"))  # fixed in CI; set it to explore
FUZZ_CONNECTIONS = 6
FUZZ_EVENTS_PER_CONNECTION = 500  # 3000 events per run, plus the bursts
FUZZ_BURST = 30  # events sent back to back every 50 events, answered as a whole
HUGE_INT = "1" + "0" * 5000  # over Python's 4300-digit limit
RAW_LEAVES = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", str(2**63), str(-(2**63) - 1), str(2**64), "1e-999",
              '"a\\u0000b"', '"\\u0000"', json.dumps("x" * 10_000), json.dumps("ç😀" * 3000), "[" * 60 + "]" * 60,
              '{"a":' * 60 + "1" + "}" * 60, "-0", "0.1e-400", '""', "[]", "{}", "null", "true", '"\\ud83d\\ude00"']
# frames whose answer must be an error: (raw text builder, expected code or None for "some error")
SURROGATES = ['"\\ud800"', '"x\\udfff"', '"\\udc00\\ud800"']


def _audio(rng) -> str:
    import base64
    n = rng.choice([0, 1, 2, 480, 2400, 4800])
    return base64.b64encode(bytes(rng.getrandbits(8) for _ in range(min(n, 64))) * (n // 64 or 1))[:n * 2].decode()


def _valid_event(rng, items: list[str]) -> dict:
    text = rng.choice(["Oi", "Qual é o horário?", "ç" * 20, "a b c", "Olá 😀"])
    kind = rng.choice(["session.update", "input_audio_buffer.append", "input_audio_buffer.append",
                       "input_audio_buffer.commit", "input_audio_buffer.clear", "conversation.item.create",
                       "conversation.item.create", "conversation.item.truncate", "conversation.item.delete",
                       "response.create", "response.cancel"])
    item_id = rng.choice(items) if items and rng.random() < 0.7 else f"item_{rng.randrange(1000)}"
    body: dict = {
        "session.update": lambda: {"session": {"type": "realtime", "instructions": text,
                                               "output_modalities": [rng.choice(["audio", "text"])],
                                               "max_output_tokens": rng.choice([1, 50, "inf"]),
                                               "audio": {"output": {"voice": rng.choice(["fake_a", "fake_b"]),
                                                                    "speed": rng.choice([0.5, 1.0, 1.5])},
                                                         "input": {"turn_detection": rng.choice(
                                                             [None, {"type": "server_vad"},
                                                              {"type": "semantic_vad", "eagerness": "auto"}])}}}},
        "input_audio_buffer.append": lambda: {"audio": _audio(rng)},
        "conversation.item.create": lambda: {"item": {"type": "message", "role": rng.choice(["user", "assistant"]),
                                                      "content": [{"type": "input_text", "text": text}]}},
        "conversation.item.truncate": lambda: {"item_id": item_id, "content_index": 0,
                                               "audio_end_ms": rng.choice([0, 10, 100000])},
        "conversation.item.delete": lambda: {"item_id": item_id},
        "response.create": lambda: {"response": {"instructions": text, "metadata": {"k": text},
                                                 "output_modalities": [rng.choice(["audio", "text"])]}},
    }.get(kind, dict)()
    return {"type": kind, **body}


def _leaves(value, path=()):
    """Paths of every leaf and container inside an event (dict keys and list indices)."""
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))


def _set(event: dict, path: tuple, value) -> None:
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def fuzz_frame(rng, event_id: str, items: list[str]) -> tuple[str | bytes, bool]:
    """(frame, certainly_invalid): a plausible event, most of them mutated."""
    roll = rng.random()
    if roll < 0.04:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64))), True
    if roll < 0.07:
        return rng.choice(["{", "", "[1,", "nul", '{"type": }', "\x00", "{" * 20_000]), True
    event = _valid_event(rng, items)
    event["event_id"] = event_id
    raw: dict[str, str] = {}
    certain = False
    mutation = rng.random()
    paths = [p for p in _leaves(event) if p and p != ("event_id",)]
    if mutation < 0.30:  # an odd leaf somewhere
        token = f"__raw{len(raw)}__"
        raw[token] = rng.choice(RAW_LEAVES)
        _set(event, rng.choice(paths), token)
    elif mutation < 0.40:  # a lone surrogate somewhere (a value or a key)
        token = f"__raw{len(raw)}__"
        raw[token] = rng.choice(SURROGATES)
        if rng.random() < 0.8:
            _set(event, rng.choice(paths), token)
        else:
            event[token] = 1
        certain = True
    elif mutation < 0.47:  # an integer over 4300 digits
        token = f"__raw{len(raw)}__"
        raw[token] = HUGE_INT
        _set(event, rng.choice(paths), token)
        certain = True
    elif mutation < 0.55:  # an unknown top-level field
        event[rng.choice(["x", "evil", "session_id", "\u0000", "é" * 50])] = rng.choice([1, "x", None, [], {}])
        certain = True
    elif mutation < 0.60:  # a type that is not one
        event["type"] = rng.choice([1, None, [], "response.create ", "RESPONSE.CREATE", "x" * 10_000, "\u0000"])
        certain = True
    elif mutation < 0.63:  # deep nesting (RecursionError in the parser)
        token = f"__raw{len(raw)}__"
        raw[token] = "[" * 20_000 + "]" * 20_000
        _set(event, rng.choice(paths), token)
        certain = True
    elif mutation < 0.70:  # a wrong type on a field
        _set(event, rng.choice(paths), rng.choice([1.5, -1, True, None, [], {}, "", "x" * 10_000, {"a": [1]}]))
    text = json.dumps(event)
    for token, literal in raw.items():
        text = text.replace(json.dumps(token), literal)
    return text, certain


async def _fuzz_connection(url: str, seed: int) -> dict:
    import random

    import websockets

    rng = random.Random(seed)
    stats = {"events": 0, "errors": 0, "certain": 0}
    items: list[str] = []
    async with websockets.connect(url, max_size=None) as ws:
        async def recv() -> dict:
            return json.loads(await asyncio.wait_for(ws.recv(), 20))  # a hang fails here

        assert (await recv())["type"] == "session.created"
        for i in range(FUZZ_EVENTS_PER_CONNECTION):
            event_id, mark = f"evt_{seed}_{i}", f"mark_{seed}_{i}"
            frame, certain = fuzz_frame(rng, event_id, items)
            await ws.send(frame)
            await ws.send(json.dumps({"type": "conversation.item.delete", "item_id": mark, "event_id": mark}))
            answer = []
            while True:
                ev = await recv()
                if ev["type"] == "error" and ev["error"].get("event_id") == mark:
                    assert ev["error"]["code"] in ("item_not_found", "rate_limited"), ev
                    break
                answer.append(ev)
                if ev["type"] == "conversation.item.added":
                    items.append(ev["item"]["id"])
                if ev["type"] == "error":
                    assert ev["error"]["type"] != "server_error", (frame[:300], ev)  # internal_error: a bug
                    assert set(ev["error"]) >= {"type", "code", "message", "param", "event_id"}, ev
            errors = [e for e in answer if e["type"] == "error" and e["error"]["event_id"] in (event_id, None)]
            if certain:
                assert errors, f"no error for an invalid event: {frame[:300]!r} → {answer}"
            stats["events"] += 1
            stats["errors"] += bool(errors)
            stats["certain"] += certain
            if i % 50 == 49:  # a pipelined burst: control and data events overtake each other (races, not parsing)
                for j in range(FUZZ_BURST):
                    frame, _ = fuzz_frame(rng, f"burst_{seed}_{i}_{j}", items)
                    await ws.send(frame)
                stats["events"] += FUZZ_BURST
                await ws.send(json.dumps({"type": "conversation.item.delete", "item_id": mark, "event_id": mark + "b"}))
                await _until(recv, lambda e, m=mark + "b": e["type"] == "error" and e["error"]["event_id"] == m)
        # a valid turn afterwards, whatever state the fuzz left the session in
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "output_modalities": ["audio"], "max_output_tokens": "inf",
            "audio": {"input": {"turn_detection": None}, "output": {"voice": "fake_a", "speed": 1.0,
                                                                     "format": {"type": "audio/pcm", "rate": 24000}}}}}))
        await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        for attempt in range(50):
            await ws.send(json.dumps({"type": "response.cancel"}))
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Oi"}]}}))
            await ws.send(json.dumps({"type": "response.create", "event_id": f"final_{attempt}"}))
            while True:
                ev = await recv()
                if ev["type"] == "error":
                    assert ev["error"]["type"] != "server_error", ev
                    if ev["error"]["event_id"] == f"final_{attempt}":
                        break  # a fuzzed response still finishing: try again
                if ev["type"] == "response.created":
                    rid = ev["response"]["id"]
                    done = await _until(recv, lambda e, rid=rid: e["type"] == "response.done" and
                                        e["response"]["id"] == rid)
                    if done["response"]["status"] == "completed":
                        assert done["response"]["output"][0]["content"], done
                        return stats
                    break
        raise AssertionError("no valid turn after the fuzz")


async def _until(recv, match) -> dict:
    while True:
        ev = await recv()
        assert not (ev["type"] == "error" and ev["error"]["type"] == "server_error"), ev
        if match(ev):
            return ev


async def test_fuzz_over_the_wire(fake_server):
    """≥ 3000 seeded events per run over real websockets: no server error, no disconnect, no hang; every certainly
    invalid event gets an `error`; each session still answers a valid turn afterwards."""
    settings = fast_settings(limits__max_events_per_second=100_000.0, limits__burst_events=100_000)
    async with fake_server(fake_backends(llm=FakeLLM("Tudo certo, obrigado.")), settings) as (url, app):
        results = await asyncio.gather(*[_fuzz_connection(url, FUZZ_SEED + k) for k in range(FUZZ_CONNECTIONS)])
        errors = app.state.falante.metrics.registry.get_sample_value("falante_client_errors_total",
                                                                     {"code": "internal_error"})
    assert sum(r["events"] for r in results) >= 3000
    assert sum(r["certain"] for r in results) > 500  # the invalid kinds are well represented
    assert not errors
