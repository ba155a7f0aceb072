"""Browser fixtures: Debian's Chromium (no Playwright browser download) with a fake microphone, against the REAL
server app (`server.app.create_app` served by `server.run.running`), with fake or real model backends.

Chromium loops its fake-mic file, so each test picks what the visitor "says": `once` (the pt-BR dev clip, then a
long silence: one utterance per test), `loop` (the clip again every 5.7 s: speech over the reply, barge-in) or
`silence`. One browser per mic file, shared by the session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from falante.audio import read_wav, write_wav
from server.app import create_app
from server.run import running
from tests.conftest import DEV_DIR, fake_backends, fast_settings

from .pages import PROBE_JS

CHROMIUM = "/usr/bin/chromium"
CLIP = "d03_jf_alpha.wav"  # "Boa noite, você pode me ajudar?"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
ONCE_SILENCE_S = 300.0  # after the clip: longer than any test takes even at load 20-35 (60 s was not: the clip
# repeated and the kiosk answered twice), so the fake mic never repeats it within a test
LOOP_GAP_S = 2.5  # `loop`: 3.5 s from the end of one utterance to the next, time for a reply to start playing


def chromium_args(mic: Path) -> list[str]:
    return [
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}", "--autoplay-policy=no-user-gesture-required",
        "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
    ]


@pytest.fixture(scope="session")
def clip() -> Path:
    path = DEV_DIR / CLIP
    if not path.is_file():
        pytest.skip(f"dev clip not found: {path}")
    return path


@pytest.fixture(scope="session")
def mic_files(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    audio, rate = read_wav(clip)
    folder = tmp_path_factory.mktemp("mic")
    files = {"once": np.concatenate([audio, np.zeros(int(ONCE_SILENCE_S * rate), np.float32)]),
             "loop": np.concatenate([audio, np.zeros(int(LOOP_GAP_S * rate), np.float32)]),
             "silence": np.zeros(rate, np.float32)}
    for name, samples in files.items():
        write_wav(folder / f"{name}.wav", samples, rate)
    return {name: folder / f"{name}.wav" for name in files}


@pytest_asyncio.fixture(scope="session")
async def browsers(mic_files: dict[str, Path]) -> AsyncIterator[Callable[[str], Any]]:
    """`await browsers("once")`: the session's Chromium whose fake mic plays that file (launched on first use)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.async_api import async_playwright

    launched: dict[str, Any] = {}
    async with async_playwright() as pw:
        async def get(mic: str) -> Any:
            if mic not in launched:
                launched[mic] = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                         args=chromium_args(mic_files[mic]))
            return launched[mic]

        yield get
        for browser in launched.values():
            await browser.close()


@pytest.fixture
def browser_page(browsers: Callable[[str], Any]) -> Callable[..., Any]:
    """`async with browser_page("once") as page`: a fresh context with the probes; page.errors collects uncaught
    page errors (tests assert it stays empty). Close it before the server so no reconnect races the shutdown."""

    @asynccontextmanager
    async def make(mic: str = "silence") -> AsyncIterator[Any]:
        browser = await browsers(mic)
        context = await browser.new_context(viewport={"width": 1280, "height": 800}, permissions=["microphone"])
        await context.add_init_script(PROBE_JS)
        page = await context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        try:
            yield page
        finally:
            await context.close()

    return make


@pytest.fixture
def ui_server() -> Callable[..., Any]:
    """`async with ui_server(backends=None, **{"section__field": v}) as (base_url, app)`: the real app with the
    pages mounted, fake models (`fake_backends()` unless given) and a real loopback port."""

    @asynccontextmanager
    async def make(backends: Any = None, **overrides: Any) -> AsyncIterator[tuple[str, Any]]:
        settings = fast_settings(server__ui=True, **overrides)
        app = create_app(settings, backends or fake_backends())
        async with running(app, settings) as host:
            yield f"http://{host}", app

    return make


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS

