"""build_chat without a browser: it is a Gradio Blocks that only embeds the protocol client."""

import ast
from pathlib import Path

import pytest

import ui


def test_build_chat_returns_blocks_and_checks_its_arguments():
    import gradio as gr

    demo = ui.build_chat("/v1/realtime")
    assert isinstance(demo, gr.Blocks)
    html = [c for c in demo.blocks.values() if isinstance(c, gr.HTML)]
    assert html and "chat.js" in html[0].js_on_load and "/v1/realtime" in html[0].js_on_load
    assert "/static/falante.css" in html[0].head
    with pytest.raises(ValueError, match="ws_path"):
        ui.build_chat("v1/realtime")
    assert (ui.STATIC_DIR / "falante-client.js").is_file() and ui.KIOSK_HTML.is_file()


def test_ui_never_imports_model_code():
    for path in Path(ui.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & {"asr", "llm", "tts", "server", "avatar"}, path
