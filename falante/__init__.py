"""falante: real-time Brazilian-Portuguese conversational avatar server.

Shared primitives (`falante.types`), configuration (`falante.config`) and the CLI (`falante.cli`) live here;
the model packages (`asr`, `llm`, `tts`, `avatar`) depend only on this package, `server` wires them together.
"""

__version__ = "0.1.0"
