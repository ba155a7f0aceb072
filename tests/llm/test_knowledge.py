"""Kiosk knowledge retrieval (fast tier): pt-BR questions find their section with or without accents, an
unrelated question finds none, files parse into sections, and the context never exceeds its token budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from falante.types import ChatMessage
from llm.knowledge import (
    NO_FACTS,
    NOT_IN_FACTS,
    KnowledgeBase,
    Section,
    context_block,
    fold,
    load_sections,
    parse_markdown,
    parse_yaml,
    with_context,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "museu.md"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    base = KnowledgeBase.from_file(EXAMPLE)
    yield base
    base.close()


@pytest.mark.parametrize("question, section", [
    ("Que horas o museu abre?", "Horário"),
    ("Até que horas vocês ficam abertos no domingo?", "Horário"),
    ("Quanto custa a entrada?", "Preço"),
    ("quanto custa o ingresso", "Preço"),
    ("Onde fica o banheiro?", "Banheiros"),
    ("onde fica o banheiro", "Banheiros"),
    ("Vocês aceitam cartão de crédito?", "pagamento"),
    ("voces aceitam cartao de credito", "pagamento"),
    ("Tem visita em Libras?", "Acessibilidade"),
    ("Qual é o endereço do museu?", "Endereço"),
    ("qual e o endereco do museu", "Endereço"),
    ("Qual a estação de metrô mais perto?", "Endereço"),
    ("qual a estacao de metro mais perto", "Endereço"),
    ("Posso tirar fotos?", "Fotografia"),
])
def test_a_question_retrieves_its_section_first_with_or_without_accents(kb, question, section):
    found = kb.retrieve(question)
    assert found, f"nothing retrieved for {question!r}"
    assert section in found[0].title


@pytest.mark.parametrize("question", ["Qual é a capital do Brasil?", "qual e a capital do brasil",
                                      "Quem descobriu o Brasil?", "Me conta uma piada", "Tem wi-fi?"])
def test_an_unrelated_question_retrieves_nothing(kb, question):
    assert kb.retrieve(question) == []


def test_accents_and_case_fold_to_the_same_terms(kb):
    assert fold("Horário de Funcionamento") == "horario de funcionamento"
    assert kb.scores("HORÁRIO do Museu") == kb.scores("horario do museu")


def test_markdown_sections_follow_headings_and_drop_comments():
    text = ("# Rodoviária\n<!-- nota da equipe: não é um fato -->\nIntro do lugar.\n\n## Guichês\n- Guichê 1: Cometa\n"
            "- Guichê 2: Util\n\n## Vazio\n\n### Embarque\nPlataformas no piso inferior.\n")
    assert parse_markdown(text) == [
        Section("Rodoviária", "Intro do lugar."),
        Section("Rodoviária › Guichês", "Guichê 1: Cometa Guichê 2: Util"),
        Section("Rodoviária › Vazio › Embarque", "Plataformas no piso inferior."),
    ]


def test_yaml_sections_nest_titles_and_join_lists(tmp_path):
    path = tmp_path / "kb.yaml"
    path.write_text("Horário: Abre às 6 horas.\nGuichês:\n  Cometa: [Guichê 1, térreo]\n  Util: Guichê 2\n")
    assert load_sections(path) == [Section("Horário", "Abre às 6 horas."),
                                   Section("Guichês › Cometa", "Guichê 1 térreo"),
                                   Section("Guichês › Util", "Guichê 2")]
    with pytest.raises(ValueError, match="mapping"):
        parse_yaml("- só uma lista\n")


def test_bad_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="knowledge file not found"):
        load_sections(tmp_path / "nope.md")
    (tmp_path / "kb.json").write_text("{}")
    with pytest.raises(ValueError, match="Markdown"):
        load_sections(tmp_path / "kb.json")
    (tmp_path / "empty.md").write_text("# Só título\n")
    with pytest.raises(ValueError, match="no sections"):
        load_sections(tmp_path / "empty.md")


def test_the_context_fits_its_token_budget_best_section_first():
    sections = [Section(f"Seção {i}", "horário " + "palavra " * 40) for i in range(5)]
    count = lambda text: len(text.split())
    budget = len(context_block([], "regras").split()) + 2 * (len(f"- {sections[0].render()}".split()) + 1)
    kb = KnowledgeBase(sections, top_k=5, min_score=0.0, relative_score=0.0, max_context_tokens=budget,
                       rules="regras", count_tokens=count)
    context = kb.context("horário")
    assert context.count("- Seção") == 2 and count(context) <= budget
    kb.close()


def test_no_fact_found_still_gives_the_rules(kb):
    context = kb.context("Qual é a capital do Brasil?")
    assert NOT_IN_FACTS in context and NO_FACTS in context


def test_with_context_copies_the_messages_and_extends_only_the_system_prompt():
    messages = [ChatMessage("system", "persona"), ChatMessage("user", "oi")]
    out = with_context(messages, "fatos")
    assert out[0] == ChatMessage("system", "persona\n\nfatos") and out[1:] == messages[1:]
    assert messages[0].content == "persona"


async def test_retrieval_runs_off_the_event_loop(kb):
    import threading
    seen: list[str] = []
    original = kb.scores

    def spy(query: str):
        seen.append(threading.current_thread().name)
        return original(query)

    kb.scores = spy  # type: ignore[method-assign]
    try:
        context = await kb.acontext("Onde fica o banheiro?")
    finally:
        del kb.scores
    assert "térreo" in context and seen and seen[0].startswith("knowledge")
