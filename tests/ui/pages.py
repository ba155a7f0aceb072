"""Page-side probes and waits for the browser tests (no sleeps: every wait is a condition in the page).

Why an init script: the pages replace their FalanteClient on every reconnect/reset, so hooks on one client
would miss later sessions. Wrapping `WebSocket` records every protocol event of every session (audio payloads
replaced by their length), and a requestAnimationFrame recorder samples the avatar's mouth on the page's own
clock, so tests read what the user saw instead of polling from Python.
"""

from __future__ import annotations

from typing import Any

PROBE_JS = r"""
(() => {
  const log = { recv: [], sent: [], opened: 0, closes: [] };
  window.__ws = log;
  const Native = window.WebSocket;
  const slim = (e) => {
    if (typeof e.delta === 'string' && /audio\.delta$/.test(e.type || '')) e.delta = e.delta.length;
    if (typeof e.audio === 'string') e.audio = e.audio.length;
    return e;
  };
  const parse = (data) => {
    if (typeof data !== 'string') return null;
    try { return JSON.parse(data); } catch (err) { if (err instanceof SyntaxError) return null; throw err; }
  };
  class ProbeSocket extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      this.__falante = String(url).includes('/v1/realtime');
      if (!this.__falante) return;
      const session = ++log.opened;
      this.addEventListener('message', (m) => {
        const e = parse(m.data);
        if (e) log.recv.push(Object.assign(slim(e), { _t: performance.now(), _s: session }));
      });
      this.addEventListener('close', (ev) => log.closes.push({ code: ev.code, reason: ev.reason, _s: session }));
    }
    send(data) {
      if (this.__falante) {
        const e = parse(data);
        if (e && e.type !== 'input_audio_buffer.append') log.sent.push(Object.assign(slim(e), { _t: performance.now() }));
        else if (e) log.appends = (log.appends || 0) + 1;
      }
      return super.send(data);
    }
  }
  window.WebSocket = ProbeSocket;

  // mouth recorder: one sample per animation frame while a falante page is up (capped)
  const mouth = [];
  window.__mouth = mouth;
  const tick = () => {
    const d = window.falanteDebug;
    if (d && d.client && d.avatar && mouth.length < 30000) {
      const player = d.client.player;
      mouth.push({ t: performance.now(), open: d.mouthOpen, h: d.mouthInnerHeight, state: d.state,
                   playing: !!(player && player.playing), rid: player ? player.responseId : null });
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""


async def wait_for(page: Any, body: str, timeout: float = 60.0) -> Any:
    """Wait until the JS expression `body` holds (guarded: the page module may not have loaded yet). Timeouts here
    only bound a hang: a 2-core machine at load 20-35 took over 20 s for steps that take 1 s idle."""
    return await page.wait_for_function(f"() => !!window.falanteDebug && ({body})", timeout=timeout * 1000,
                                        polling=50)


async def received(page: Any, kind: str | None = None) -> list[dict]:
    """Server events the page received (all sessions), optionally of one type."""
    events = await page.evaluate("() => window.__ws.recv")
    return [e for e in events if kind is None or e.get("type") == kind]


async def sent(page: Any, kind: str | None = None) -> list[dict]:
    """Client events the page sent (appends are only counted, in `window.__ws.appends`)."""
    events = await page.evaluate("() => window.__ws.sent")
    return [e for e in events if kind is None or e.get("type") == kind]


async def mouth_samples(page: Any, since: float = 0.0) -> list[dict]:
    return await page.evaluate("(since) => window.__mouth.filter((m) => m.t >= since)", since)


async def now_ms(page: Any) -> float:
    return await page.evaluate("() => performance.now()")


async def wait_frames(page: Any, since: float, count: int = 15, timeout: float = 30.0) -> list[dict]:
    """Wait until the recorder holds `count` animation frames after `since`; returns them."""
    await page.wait_for_function("([since, n]) => window.__mouth.filter((m) => m.t >= since).length >= n",
                                 arg=[since, count], timeout=timeout * 1000, polling=50)
    return await mouth_samples(page, since)


def assert_lip_sync(samples: list[dict], min_playing: int = 10, min_levels: int = 4,
                    check_height: bool = True) -> list[dict]:
    """The mouth opens on vowels and closes on consonants while the reply is audible."""
    playing = [s for s in samples if s["playing"]]
    assert len(playing) >= min_playing, f"only {len(playing)} animation frames while audio played"
    states = {s["state"] for s in playing}
    assert states == {"speaking"}, f"the page left 'speaking' while the reply was audible: {states}"
    opens = [s["open"] for s in playing]
    assert max(opens) > 0.3, f"mouth never opened (max {max(opens):.2f})"
    assert min(opens) < 0.2, f"mouth never closed between sounds (min {min(opens):.2f})"
    assert len({round(o, 2) for o in opens}) >= min_levels, "mouth did not move (too few distinct openings)"
    if check_height:
        assert max(s["h"] for s in playing) > 15, "the SVG mouth did not open (px in the 400×480 viewBox)"
    return playing


def assert_rest(samples: list[dict], check_height: bool = True) -> None:
    assert samples and not any(s["playing"] for s in samples), f"audio still playing: {samples[:3]}"
    opens = [round(s["open"], 3) for s in samples]
    assert max(opens) < 0.02, f"mouth still moving after the audio ended: {opens}"
    if check_height:
        heights = [round(s["h"], 1) for s in samples]
        assert max(heights) < 8, f"the SVG mouth is still open after the audio ended: {heights}"


def metric(app: Any, name: str, **labels: str) -> float:
    """A sample from the app's own Prometheus registry (0 when never observed)."""
    return app.state.falante.metrics.registry.get_sample_value(name, labels) or 0.0
