"""The Gradio web chat: a page that is only a CLIENT of the websocket protocol (it never imports model code).

Why gr.HTML + browser JS rather than Python callbacks: the browser talks to /v1/realtime directly, so mic audio,
lip-sync frames and barge-in stay on the audio clock without a Python hop. Gradio gives the page, the theme and
the mount point (`gr.mount_gradio_app(app, build_chat(), path="/chat")`).
"""

from __future__ import annotations

import json

import gradio as gr

_TITLE = "Falante — conversa"
_INTRO = (
    "### Falante · assistente brasileira\n"
    "Fale pelo microfone ou escreva. A transcrição aparece ao vivo; a Falante responde com voz e rosto."
)


def build_chat(ws_path: str = "/v1/realtime", static_url: str = "/static/") -> gr.Blocks:
    """Blocks for the chat page. `ws_path`: a path on the page's host or a full ws(s):// URL; `static_url`: where
    `ui.STATIC_DIR` is served. A `?token=` on the page URL is forwarded to the websocket."""
    if not ws_path.startswith(("/", "ws://", "wss://")):
        raise ValueError(f"ws_path must be an absolute path or a ws(s):// URL, got {ws_path!r}")
    if not static_url.endswith("/"):
        static_url += "/"
    # The browser resolves a bare path against the page's own host (http → ws, https → wss).
    js = (
        "const path = " + json.dumps(ws_path) + ";\n"
        "const url = path.startsWith('/') ? (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path"
        " : path;\n"
        "import(" + json.dumps(static_url + "chat.js") + ").then((m) => m.mount(element.querySelector('.falante-root'),"
        " { wsUrl: url }));"
    )
    with gr.Blocks(title=_TITLE, fill_width=True) as demo:
        gr.Markdown(_INTRO)
        gr.HTML(
            '<div class="falante-root">carregando…</div>',
            head=f'<link rel="stylesheet" href="{static_url}falante.css">',
            js_on_load=js,
            elem_id="falante-chat",
            padding=False,
        )
    return demo
