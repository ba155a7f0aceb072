"""The faces of falante: the kiosk page and the Gradio web chat, both clients of the websocket protocol.

`STATIC_DIR` holds the browser code (served at /static; kiosk.html at /kiosk). `build_chat` is imported lazily
so importing `ui` does not import Gradio. This package never imports model code (asr/llm/tts/server).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
KIOSK_HTML: Path = STATIC_DIR / "kiosk.html"

__all__ = ["KIOSK_HTML", "STATIC_DIR", "build_chat"]

if TYPE_CHECKING:  # pragma: no cover
    from .chat import build_chat


def __getattr__(name: str) -> Any:
    if name == "build_chat":
        from .chat import build_chat

        return build_chat
    raise AttributeError(f"module 'ui' has no attribute {name!r}")
