"""One exception type for every LLM backend failure, so the server can turn it into a session `error` event."""

from __future__ import annotations


class LLMError(RuntimeError):
    """A backend could not start or could not finish a generation (start failure, OOM, timeout, 5xx, bad input).

    `code` is a short machine-readable reason the server can put in the protocol's `error.code`.
    """

    def __init__(self, message: str, *, code: str = "llm_error") -> None:
        super().__init__(message)
        self.code = code
