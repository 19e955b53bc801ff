"""Prompt files (prompts/*.txt or *.md) and their strict rendering.

Prompts are plain text with `{name}` placeholders (Python format syntax; a literal brace is
written `{{`). Each prompt has a fixed set of variables: a file that uses a different set is
rejected when it is loaded, and rendering with a missing or an unexpected value raises, so a
typo in a prompt file fails loudly at startup instead of silently sending "{qustion}" to the
model. Values are inserted verbatim (never re-parsed), so braces inside passages are safe.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate

from rag.core.errors import InputError

# The repository's prompts/ folder, found from the package (no environment reads).
PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
SUFFIXES = (".txt", ".md")

# The variables each prompt must use: exactly these, no more, no fewer.
EXPECTED: dict[str, frozenset[str]] = {
    "system": frozenset(),
    "answer": frozenset({"question", "passages", "count"}),
    "rewrite": frozenset({"history", "question"}),
}


class PromptError(InputError):
    """A prompt file is missing or malformed, or was rendered with the wrong variables."""


def template_variables(template: str) -> frozenset[str]:
    """The named placeholders of a template. Positional `{}`, `{0}`, attribute/index access and
    format specs are refused: they are almost always a typo in a prompt file."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise PromptError(f"提示词模板的花括号不匹配 (unbalanced braces in prompt template: {e})") from e
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise PromptError(
                f"提示词模板中的占位符 {{{field}}} 不合法，只允许 {{名称}} "
                f"(placeholder {{{field}}} must be a plain name)"
            )
        names.add(field)
    return frozenset(names)


def _check(what: str, expected: frozenset[str], got: frozenset[str] | set[str]) -> None:
    missing, extra = sorted(expected - set(got)), sorted(set(got) - expected)
    if missing or extra:
        raise PromptError(
            f"提示词 {what} 的变量不符：缺少 {missing}，多余 {extra} "
            f"({what}: missing variables {missing}, unexpected variables {extra})"
        )


def load_prompt(name: str, prompts_dir: Path | None = None) -> str:
    """The text of prompts/<name>.txt (or .md)."""
    folder = Path(prompts_dir) if prompts_dir is not None else PROMPTS_DIR
    for suffix in SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            try:
                text = path.read_text("utf-8-sig")
            except (OSError, UnicodeDecodeError) as e:
                raise PromptError(f"无法读取提示词文件 {path} (cannot read prompt file: {e})") from e
            if not text.strip():
                raise PromptError(f"提示词文件 {path} 为空 (prompt file is empty)")
            return text.strip() + "\n"
    raise PromptError(f"找不到提示词文件 {folder / name}.txt (prompt file not found)")


def render(template: str, **values: object) -> str:
    """Fill a template; every placeholder needs a value and every value a placeholder."""
    _check("template", template_variables(template), set(values))
    return template.format(**{k: str(v) for k, v in values.items()})


def chat_template(system: str | None, human: str) -> ChatPromptTemplate:
    """A langchain chat template (optional system message + human message) whose declared input
    variables are validated against the templates."""
    messages: list[tuple[str, str]] = ([("system", system)] if system is not None else []) + [("human", human)]
    variables = sorted(template_variables(system or "") | template_variables(human))
    return ChatPromptTemplate(messages=messages, input_variables=variables, validate_template=True)


def format_messages(template: ChatPromptTemplate, **values: object) -> list[BaseMessage]:
    """Strict `format_messages`: langchain ignores extra keys, which would hide a renamed variable."""
    _check("chat", frozenset(template.input_variables), set(values))
    return template.format_messages(**{k: str(v) for k, v in values.items()})


@dataclass(frozen=True)
class Prompts:
    """The three prompts of the LLM mode, checked when loaded."""

    system: str
    answer: str
    rewrite: str

    @classmethod
    def load(cls, prompts_dir: Path | None = None) -> Prompts:
        texts = {name: load_prompt(name, prompts_dir) for name in EXPECTED}
        for name, text in texts.items():
            _check(name, EXPECTED[name], template_variables(text))
        return cls(**texts)

    @property
    def answer_template(self) -> ChatPromptTemplate:
        return chat_template(self.system, self.answer)

    @property
    def rewrite_template(self) -> ChatPromptTemplate:
        return chat_template(None, self.rewrite)

    def answer_messages(self, question: str, passages: str, count: int) -> list[BaseMessage]:
        return format_messages(self.answer_template, question=question, passages=passages, count=count)

    def rewrite_messages(self, question: str, history: str) -> list[BaseMessage]:
        return format_messages(self.rewrite_template, question=question, history=history)
