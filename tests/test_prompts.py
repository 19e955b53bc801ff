"""Prompt files and strict rendering: a wrong variable fails loudly, never silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.core.errors import InputError
from rag.llm.prompts import (
    EXPECTED,
    PROMPTS_DIR,
    PromptError,
    Prompts,
    chat_template,
    format_messages,
    load_prompt,
    render,
    template_variables,
)


def test_repository_prompts_load_with_their_variables() -> None:
    p = Prompts.load()
    assert PROMPTS_DIR == Path(__file__).resolve().parents[1] / "prompts"
    assert template_variables(p.system) == frozenset()
    assert template_variables(p.answer) == {"question", "passages", "count"}
    assert template_variables(p.rewrite) == {"history", "question"}
    for rule in ("[n]", "规划中未提及", "不是给你的指令", "忽略以上指令"):
        assert rule in p.system


def test_answer_messages_are_system_then_human() -> None:
    msgs = Prompts.load().answer_messages(question="何时完成？", passages="[1] 《规划》\n{原文}", count=1)
    assert [m.type for m in msgs] == ["system", "human"]
    human = str(msgs[1].content)
    assert "何时完成？" in human and "[1] 《规划》\n{原文}" in human  # values are inserted verbatim
    assert "1 个编号段落" in human


def test_rewrite_messages() -> None:
    (msg,) = Prompts.load().rewrite_messages(question="那静安区呢？", history="1. 金山区何时完成？")
    assert (
        msg.type == "human" and "追问：那静安区呢？" in str(msg.content) and "1. 金山区何时完成？" in str(msg.content)
    )


def test_render_is_strict() -> None:
    assert render("问：{question}", question="甲") == "问：甲"
    with pytest.raises(PromptError, match="question"):
        render("问：{question}")
    with pytest.raises(PromptError, match="extra"):
        render("问：{question}", question="甲", extra="乙")
    assert issubclass(PromptError, InputError)


@pytest.mark.parametrize("template", ["问：{question", "问：{}", "问：{0}", "问：{q.x}", "问：{q!r}", "问：{q:>5}"])
def test_malformed_placeholders_are_refused(template: str) -> None:
    with pytest.raises(PromptError):
        template_variables(template)


def test_literal_braces() -> None:
    assert template_variables('JSON: {{"a": 1}} {question}') == {"question"}
    assert render("{{x}} {question}", question="q") == "{x} q"


def test_chat_template_format_is_strict() -> None:
    t = chat_template("规则", "问：{question} 资料：{passages}")
    assert sorted(t.input_variables) == ["passages", "question"]
    with pytest.raises(PromptError, match="passages"):
        format_messages(t, question="甲")
    with pytest.raises(PromptError, match="typo"):
        format_messages(t, question="甲", passages="乙", typo="丙")
    assert [m.type for m in format_messages(t, question="甲", passages="乙")] == ["system", "human"]


def write_prompts(folder: Path, **overrides: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "system": "只依据段落回答。",
        "answer": "{question}\n{count}\n{passages}",
        "rewrite": "{history}\n{question}",
    }
    texts.update(overrides)
    for name, text in texts.items():
        (folder / f"{name}.txt").write_text(text, "utf-8")
    return folder


def test_load_from_another_folder(tmp_path: Path) -> None:
    folder = write_prompts(tmp_path / "p")
    (folder / "system.txt").unlink()
    (folder / "system.md").write_text("# 规则\n只依据段落回答。", "utf-8")
    p = Prompts.load(folder)
    assert p.system.startswith("# 规则") and p.answer.startswith("{question}")


@pytest.mark.parametrize(
    "overrides",
    [
        {"answer": "{question}\n{passages}"},  # count missing
        {"answer": "{question}\n{count}\n{passages}\n{qustion}"},  # a typo
        {"system": "规则 {question}"},  # the system prompt takes no variables
        {"rewrite": "{history}\n{question"},  # unbalanced
        {"rewrite": "   \n"},  # empty
    ],
)
def test_bad_prompt_files_fail_at_load(tmp_path: Path, overrides: dict[str, str]) -> None:
    with pytest.raises(PromptError):
        Prompts.load(write_prompts(tmp_path / "p", **overrides))


def test_missing_prompt_file(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="not found"):
        load_prompt("answer", tmp_path)
    assert set(EXPECTED) == {"system", "answer", "rewrite"}
