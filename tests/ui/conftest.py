"""Browser fixtures: Debian's Chromium (no Playwright browser download) with a fake mic playing a pt-BR dev clip."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytest_asyncio

CHROMIUM = "/usr/bin/chromium"
CLIP = Path("/work/shared/data/ptbr-speech-dev/d03_jf_alpha.wav")  # "Boa noite, você pode me ajudar?"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def chromium_args(clip: Path) -> list[str]:
    return [
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={clip}", "--autoplay-policy=no-user-gesture-required",
        "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
    ]


@pytest.fixture(scope="session")
def clip() -> Path:
    if not CLIP.is_file():
        pytest.skip(f"dev clip not found: {CLIP}")
    return CLIP


@pytest_asyncio.fixture(scope="session")
async def browser(clip):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(clip))
        yield browser
        await browser.close()


@pytest_asyncio.fixture
async def page(browser):
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, permissions=["microphone"])
    page = await context.new_page()
    page.errors = []  # uncaught page errors fail the test
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    await context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
