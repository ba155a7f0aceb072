"""History budget: persona kept, oldest turns dropped first, truncation keeps what was heard."""

from __future__ import annotations

import pytest

from falante.types import ChatMessage
from llm.conversation import MESSAGE_OVERHEAD_TOKENS, Conversation, estimate_tokens, token_counter_for


def words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def count_words(text: str) -> int:  # a deterministic "tokenizer": one token per word
    return len(text.split())


def test_estimate_tokens() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("um dois") == 3
    assert estimate_tokens("um dois três quatro") == 6


def test_messages_start_with_the_persona() -> None:
    conv = Conversation("Você é a Falante.")
    conv.add_user("Oi")
    conv.add_assistant("Olá!")
    assert conv.messages() == [ChatMessage("system", "Você é a Falante."), ChatMessage("user", "Oi"),
                               ChatMessage("assistant", "Olá!")]


def test_oldest_turns_are_dropped_first_and_the_persona_is_kept() -> None:
    conv = Conversation("persona", budget_tokens=60, count_tokens=count_words)
    for turn in range(6):
        conv.add_user(words(5, f"u{turn}_"))
        conv.add_assistant(words(5, f"a{turn}_"))
    msgs = conv.messages()
    assert msgs[0] == ChatMessage("system", "persona")
    assert conv.tokens() <= 60
    # newest items survive, oldest go, and history starts with a user turn
    assert msgs[-1].content == words(5, "a5_")
    assert msgs[1].role == "user"
    kept = [m.content for m in msgs[1:]]
    assert words(5, "u0_") not in kept
    budget_per_turn = 2 * (5 + MESSAGE_OVERHEAD_TOKENS)
    assert len(kept) == 2 * ((60 - (1 + MESSAGE_OVERHEAD_TOKENS)) // budget_per_turn)


def test_the_newest_message_is_kept_even_alone_over_budget() -> None:
    conv = Conversation("persona", budget_tokens=10, count_tokens=count_words)
    conv.add_user(words(50, "x"))
    assert conv.messages()[-1].content == words(50, "x")


def test_truncate_assistant_keeps_what_was_heard() -> None:
    conv = Conversation("persona")
    conv.add_user("Qual o horário?")
    item = conv.add_assistant("O museu abre às nove. Fecha às seis.")
    conv.truncate_assistant(item, "O museu abre às nove.")
    assert conv.messages()[-1] == ChatMessage("assistant", "O museu abre às nove.")
    conv.truncate_assistant(item, "  ")  # nothing heard: the reply leaves the history
    assert [m.role for m in conv.messages()] == ["system", "user"]


def test_truncate_errors_are_clear() -> None:
    conv = Conversation("persona")
    user = conv.add_user("oi")
    with pytest.raises(ValueError, match="only assistant"):
        conv.truncate_assistant(user, "x")
    with pytest.raises(KeyError, match="no conversation item"):
        conv.truncate_assistant("missing", "x")


def test_per_session_persona_and_instructions() -> None:
    a = Conversation("padrão")
    b = Conversation("padrão")
    a.set_persona(instructions="Fale como um pirata.")
    assert a.messages()[0].content == "padrão\n\nFale como um pirata."
    assert b.messages()[0].content == "padrão"
    a.set_persona(persona="Você é um guia do museu.")
    assert a.messages()[0].content.startswith("Você é um guia do museu.")


def test_ids_roles_and_delete() -> None:
    conv = Conversation("p")
    first = conv.add("user", "oi", "item_a")
    with pytest.raises(ValueError, match="duplicate"):
        conv.add("user", "de novo", "item_a")
    with pytest.raises(ValueError, match="role"):
        conv.add("system", "não")
    conv.delete(first)
    assert conv.items == ()
    with pytest.raises(ValueError):
        Conversation("p", budget_tokens=0)


def test_token_counter_for_prefers_the_backends_tokenizer() -> None:
    class WithCounter:
        def count_tokens(self, text: str) -> int:
            return 42

    assert token_counter_for(WithCounter())("x") == 42
    assert token_counter_for(object()) is estimate_tokens


class CountingCounter:
    """A tokenizer stand-in that counts how often it is called (the real one is slow and runs on the event loop)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, text: str) -> int:
        self.calls += 1
        return len(text.split())


def test_budget_trimming_counts_each_item_once() -> None:
    """Regression (issue 12): trimming re-counted the whole history after every drop, O(N²) counter calls."""
    n = 400
    counter = CountingCounter()
    conv = Conversation("persona", budget_tokens=100, count_tokens=counter)
    for i in range(n):
        conv.add_user(words(30, f"u{i}_"))
    conv.messages()
    assert counter.calls <= n + 1
    assert [m.content for m in conv.messages()[1:]] == [words(30, f"u{n - 2}_"), words(30, f"u{n - 1}_")]
    calls = counter.calls
    conv.add_assistant("ok")
    conv.messages()  # only the new item (and nothing already counted) is tokenized
    assert counter.calls == calls + 1


def test_truncated_item_is_counted_again() -> None:
    conv = Conversation("persona", budget_tokens=30, count_tokens=count_words)
    conv.add_user(words(5, "u"))
    item = conv.add_assistant(words(40, "a"))
    assert conv.tokens() == 5 + 9 + 44  # the long reply's count is cached now
    conv.truncate_assistant(item, words(3, "a"))
    conv.add_user(words(5, "v"))
    assert [m.role for m in conv.messages()] == ["system", "user", "assistant", "user"]  # 5 + 9 + 7 + 9 = 30


def test_history_item_cap_drops_the_oldest() -> None:
    conv = Conversation("persona", budget_tokens=10**6, max_items=3)
    for i in range(5):
        conv.add_user(f"u{i}")
        conv.add_assistant(f"a{i}")
    assert len(conv.items) <= 3 and conv.items[0].role == "user" and conv.items[-1].text == "a4"


def test_reserved_tokens_leave_old_items_out_of_that_prompt_but_keep_them_in_history():
    count = lambda text: len(text.split())
    conv = Conversation("persona", budget_tokens=60, count_tokens=count)
    for i in range(4):
        conv.add_user(f"pergunta {i} " + "palavra " * 4)
        conv.add_assistant(f"resposta {i} " + "palavra " * 4)
    # items of 10 tokens (6 words + 4 overhead), persona 5: five fit, the window starts at a user turn
    assert len(conv.messages()) == 1 + 4
    with_reserve = conv.messages(reserve_tokens=25)
    assert [m.content.split()[:2] for m in with_reserve[1:]] == [["pergunta", "3"], ["resposta", "3"]]
    assert sum(count(m.content) + 4 for m in with_reserve) + 25 <= 60
    assert len(conv.items) == 4  # nothing dropped for good: the next turn without context sees them again
    assert len(conv.messages()) == 1 + 4


def test_calls_and_outputs_are_kept_and_rendered_as_the_chat_template_expects():
    from falante.types import ToolCall

    conv = Conversation("persona", budget_tokens=10_000)
    conv.add_user("Que horas abre?")
    conv.add_call(ToolCall("call_1", "consultar_horario", '{"local": "museu"}'), "fc1")
    conv.add_call(ToolCall("call_2", "consultar_preco", '{"item": "entrada"}'), "fc2")
    conv.add_call_output("call_1", "9h", "out1")
    conv.add_call_output("call_2", "R$ 20", "out2")
    msgs = conv.messages()
    assert [m.role for m in msgs] == ["system", "user", "assistant", "tool", "tool"]
    assert [c.call_id for c in msgs[2].tool_calls] == ["call_1", "call_2"]  # consecutive calls: one message
    assert [(m.content, m.tool_call_id) for m in msgs[3:]] == [("9h", "call_1"), ("R$ 20", "call_2")]
    with pytest.raises(KeyError):
        conv.add_call_output("call_unknown", "x")


def test_budget_never_leaves_an_output_without_its_call():
    from falante.types import ToolCall

    conv = Conversation("p", budget_tokens=10_000, max_items=3)
    conv.add_user("a")
    conv.add_call(ToolCall("c", "f", "{}"))
    conv.add_call_output("c", "out")
    conv.add_user("b")  # over max_items: the oldest go, and with them the call's output (history starts at a user)
    assert [i.role for i in conv.items] == ["user"]
