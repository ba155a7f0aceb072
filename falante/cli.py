"""`falante` command line: serve the websocket server, prepare models, transcribe a WAV, say a text."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

from falante import __version__
from falante.config import Settings, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if getattr(args, "host", None):
        settings.server.host = args.host
    if getattr(args, "port", None) is not None:
        settings.server.port = args.port
    if getattr(args, "no_ui", False):
        settings.server.ui = False
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    from server.app import ConfigError, create_app
    from server.run import make_server, uvicorn_config

    settings = _settings(args)
    try:
        app = create_app(settings)
    except ConfigError as exc:
        print(f"falante: {exc}", file=sys.stderr)
        return 2
    host, port = settings.server.host, settings.server.port
    print(f"falante {__version__}: loading models, then serving ws://{host}:{port}/v1/realtime, "
          f"chat http://{host}:{port}/chat/, kiosk http://{host}:{port}/kiosk", flush=True)
    make_server(app, uvicorn_config(app, settings)).run()
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Assemble/convert every configured model once (what `serve` would do at its first start)."""
    from server.backends import build_backends

    backends = build_backends(_settings(args))
    t0 = time.perf_counter()

    async def run() -> None:
        await backends.start()
        await backends.close()

    asyncio.run(run())
    print(f"models ready in {time.perf_counter() - t0:.1f} s: {backends.load_seconds}")
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from asr.whisper import FasterWhisperRecognizer
    from falante.audio import read_wav, resample
    from falante.types import ASR_SAMPLE_RATE

    settings = _settings(args)
    recognizer = FasterWhisperRecognizer(settings.asr)
    recognizer.load()
    audio, rate = read_wav(args.input)
    print(asyncio.run(recognizer.transcribe(resample(audio, rate, ASR_SAMPLE_RATE),
                                            language=args.language or settings.asr.language)))
    return 0


def cmd_say(args: argparse.Namespace) -> int:
    import numpy as np

    from falante.audio import resample, write_wav
    from server.backends import build_tts

    settings = _settings(args)
    tts = build_tts(settings)
    tts.load()

    async def run() -> np.ndarray:
        pieces = [resample(c.audio, c.sample_rate, args.rate)
                  async for c in tts.synthesize(args.text, voice=args.voice, speed=args.speed)]
        return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

    audio = asyncio.run(run())
    write_wav(args.output, audio, args.rate)
    print(f"wrote {args.output} ({len(audio) / args.rate:.2f} s at {args.rate} Hz)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="falante", description="Real-time pt-BR conversational avatar server.")
    parser.add_argument("--version", action="version", version=f"falante {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="TOML config file (default: $FALANTE_CONFIG, else built-in defaults)")
    common.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--config", help="TOML config file (default: $FALANTE_CONFIG, else built-in defaults)")
    parser.add_argument("-v", "--verbose", action="store_true")
    # The common options are accepted after the subcommand too (`falante serve --config my.toml`, as the README
    # says); SUPPRESS keeps a subcommand's missing option from overwriting one given before it.
    for action in common._actions:
        action.default = argparse.SUPPRESS
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, **kwargs: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    serve = add("serve", help="run the websocket server, the chat page and the kiosk page")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-ui", action="store_true", help="only the websocket, /healthz and /metrics")
    serve.set_defaults(func=cmd_serve)

    prepare = add("prepare", help="assemble and load every configured model once")
    prepare.set_defaults(func=cmd_prepare)

    transcribe = add("transcribe", help="print the transcript of a WAV file")
    transcribe.add_argument("input", type=Path)
    transcribe.add_argument("--language")
    transcribe.set_defaults(func=cmd_transcribe)

    say = add("say", help="speak a text into a WAV file")
    say.add_argument("text")
    say.add_argument("-o", "--output", type=Path, required=True)
    say.add_argument("--voice")
    say.add_argument("--speed", type=float, default=1.0)
    say.add_argument("--rate", type=int, default=24_000)
    say.set_defaults(func=cmd_say)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except FileNotFoundError as exc:
        print(f"falante: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
