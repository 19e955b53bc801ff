"""The optional LLM answer mode: a fluent answer written from the extractive stage's passages,
kept only when it passes the mechanical grounding checks (rag.llm.grounding).

Rules that keep it as strict as the extractive mode:

- the LLM is never asked where the extractive stage abstained (refusal stays as it was);
- it sees only numbered passages: the extractive citations' chunks first, then further
  retrieved hits (MAX_PASSAGES in all), each with document title and section path;
- its answer is rejected, and the extractive answer returned instead, when grounding fails,
  when it says 规划中未提及 although the extractive evidence passed the refusal threshold
  ("llm_declined"), or when the endpoint is down, slow, truncated or answers garbage. The reason
  goes to extra["fallback_reason"]; nothing is raised to the caller.

`llm_timeout_s` is the HTTP client timeout (connect, and each read: a stream that stalls longer
than that between tokens fails), not a cap on the whole generation.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import openai
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from rag.core.settings import Settings
from rag.core.text import normalise, split_sentences
from rag.core.types import Answer, Chunk, Citation, VersionTag
from rag.llm.grounding import MARKER, check_answer, is_decline, renumber, split_claims
from rag.llm.prompts import Prompts

log = logging.getLogger(__name__)

MAX_PASSAGES = 5
HISTORY_TURNS = 6  # earlier turns shown to the rewrite prompt
HISTORY_CHARS = 300  # per turn
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)  # reasoning models (DeepSeek-R1, Qwen3)
_OPEN_TAIL = re.compile(r"[\[［][^\]］]{0,15}$")  # a marker that may still be streaming in
_REWRITE_PREFIX = re.compile(r"^(?:改写后的问题|改写后|完整问题|问题)\s*[:：]\s*")


@dataclass(frozen=True)
class Passage:
    chunk: Chunk
    score: float
    quote: str | None  # the extractive quote when this chunk was an extractive citation
    version: VersionTag | None = None  # the document's version tag, kept through to the LLM's citations

    def render(self, n: int) -> str:
        where = f"《{self.chunk.title}》" if self.chunk.title else "（无标题文件）"
        if self.chunk.section:
            where += f" › {self.chunk.section}"
        return f"[{n}] {where}\n{self.chunk.text}"


class LLMFailure(Exception):
    """Internal: why an LLM answer cannot be used (the fallback_reason)."""


def _chain(e: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _named(e: BaseException, *names: str) -> bool:
    # By name: the openai client may be built on httpx or on a fork (httpx2) with its own classes.
    return any(c.__name__ in names for c in type(e).__mro__)


def _reason(e: BaseException) -> str:
    """A short fallback_reason for an exception from the client or the stream (or its causes)."""
    if isinstance(e, LLMFailure):
        return str(e)
    chain = _chain(e)
    if any(isinstance(x, openai.APITimeoutError) or _named(x, "TimeoutException") for x in chain):
        return "timeout: the LLM endpoint did not answer in time (模型服务超时)"
    status = next((x for x in chain if isinstance(x, openai.APIStatusError)), None)
    if status is not None:
        return f"http_{status.status_code}: the LLM endpoint returned an error (模型服务返回错误)"
    if any(_named(x, "RemoteProtocolError") for x in chain):
        return "bad_response: the stream broke off (模型服务的输出中断)"
    if any(isinstance(x, openai.APIConnectionError) or _named(x, "TransportError") for x in chain):
        return "connection_error: the LLM endpoint is unreachable (无法连接模型服务)"
    return f"bad_response: {type(e).__name__} (模型服务返回了无法解析的内容)"


def _visible(raw: str) -> str:
    """What the user may see of the raw model output: no reasoning blocks, no partial <think tag."""
    text = _THINK.sub("", raw)
    for k in range(min(len("<think>") - 1, len(text)), 0, -1):
        if "<think>".startswith(text[-k:]):
            return text[:-k]
    return text


def _history_text(history: list[str]) -> str:
    turns = [h.strip()[:HISTORY_CHARS] for h in history if h and h.strip()][-HISTORY_TURNS:]
    return "\n".join(f"{i}. {t}" for i, t in enumerate(turns, 1))


class LLMGenerator:
    """A `Generator` (rag.answer.pipeline) over an OpenAI-compatible endpoint (vLLM, Ollama, a cloud API)."""

    name = "llm"

    def __init__(self, settings: Settings, prompts: Prompts | None = None, max_passages: int = MAX_PASSAGES) -> None:
        if not settings.llm_enabled:
            raise ValueError("LLMGenerator needs settings.llm_base_url and settings.llm_model")
        self.settings = settings
        self.model = str(settings.llm_model)
        self.prompts = prompts or Prompts.load()  # a bad prompt file fails here, at startup
        self.max_passages = max_passages
        self.chat = ChatOpenAI(
            model=self.model,
            base_url=settings.llm_base_url,
            api_key=SecretStr(settings.llm_api_key or "EMPTY"),  # local servers want some key; never read the env
            timeout=settings.llm_timeout_s,
            temperature=settings.llm_temperature,
            max_retries=0,  # a retry doubles the wait; the extractive answer is the better fallback
            stream_usage=False,  # no stream_options: older vLLM/Ollama builds reject it
        )

    # -- passages and messages --------------------------------------------------------------

    def passages(self, extractive: Answer) -> list[Passage]:
        """Extractive citations' chunks first (the evidence that passed the threshold), then
        further retrieved hits, without duplicates."""
        out: list[Passage] = []
        seen: set[str] = set()
        tags = {c.chunk.doc_id: c.version for c in extractive.citations if c.version}
        for c in extractive.citations:
            if c.chunk.id not in seen:
                seen.add(c.chunk.id)
                out.append(Passage(c.chunk, c.score, c.quote, c.version))
        for h in extractive.retrieved:
            if len(out) >= self.max_passages:
                break
            if h.chunk.id not in seen:
                seen.add(h.chunk.id)
                out.append(Passage(h.chunk, h.score, None, tags.get(h.chunk.doc_id)))
        return out

    def messages(self, question: str, passages: list[Passage]) -> list[BaseMessage]:
        text = "\n\n".join(p.render(i) for i, p in enumerate(passages, 1))
        return self.prompts.answer_messages(question=question, passages=text, count=len(passages))

    # -- the Generator protocol -------------------------------------------------------------

    def refine(self, question: str, extractive: Answer) -> Answer:
        """The LLM answer when it passes the checks, else the extractive one with the reason."""
        if extractive.abstained:
            return self._extractive(extractive, None)
        t0 = time.perf_counter()
        passages = self.passages(extractive)
        try:
            msg = self.chat.invoke(self.messages(question, passages))
            if not isinstance(msg.content, str):
                raise LLMFailure("bad_response: content is not text (模型返回的内容不是文本)")
            self._check_finish(msg.response_metadata.get("finish_reason"), streamed=False)
            return self._accept(question, extractive, passages, _visible(msg.content), t0)
        except Exception as e:  # noqa: BLE001 - never raise: the user gets the extractive answer instead
            return self._fallback(extractive, e, t0)

    def refine_stream(self, question: str, extractive: Answer) -> Iterator[str | Answer]:
        """Text deltas as the model streams them (markers already renumbered, so on success the
        deltas add up to the final Answer's text), then the final Answer. On a fallback the final
        text differs from what was streamed and the consumer replaces it; when the failure came
        before any delta, the extractive text is streamed instead so the two agree."""
        if extractive.abstained:
            final = self._extractive(extractive, None)
            yield final.answer
            yield final
            return
        t0 = time.perf_counter()
        passages = self.passages(extractive)
        raw, shown, finish = "", "", None
        try:
            for chunk in self.chat.stream(self.messages(question, passages)):
                if not isinstance(chunk.content, str):
                    raise LLMFailure("bad_response: content is not text (模型返回的内容不是文本)")
                raw += chunk.content
                finish = chunk.response_metadata.get("finish_reason") or finish
                # Hold back a marker that may still be arriving, and trailing whitespace.
                text = renumber(_OPEN_TAIL.sub("", _visible(raw)))[0].strip()
                if text.startswith(shown) and len(text) > len(shown):
                    yield text[len(shown) :]
                    shown = text
            text = renumber(_visible(raw))[0].strip()
            if text.startswith(shown) and len(text) > len(shown):
                yield text[len(shown) :]
                shown = text
            self._check_finish(finish, streamed=True)
            final = self._accept(question, extractive, passages, _visible(raw), t0)
        except Exception as e:  # noqa: BLE001 - client, SSE parsing and validation all end in the fallback
            final = self._fallback(extractive, e, t0)
        if not shown and final.answer:
            yield final.answer
        yield final

    def rewrite(self, question: str, history: list[str]) -> str:
        """A follow-up rewritten into a stand-alone question; the question unchanged when there
        is no history or the LLM fails or answers something that is not a question rewrite."""
        q = question.strip()
        if not q or not any(h.strip() for h in history):
            return q
        try:
            msg = self.chat.invoke(self.prompts.rewrite_messages(question=q, history=_history_text(history)))
            text = _visible(msg.content).strip() if isinstance(msg.content, str) else ""
        except Exception as e:  # noqa: BLE001 - a failed rewrite keeps the user's question
            log.warning("LLM rewrite failed, keeping the question: %s", _reason(e))
            return q
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        out = _REWRITE_PREFIX.sub("", lines[0]).strip().strip("\"'“”「」") if lines else ""
        if not out or len(out) > max(200, 4 * len(q)) or MARKER.search(out) or "规划中未提及" in out:
            return q
        return out

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _check_finish(finish: Any, streamed: bool) -> None:
        # A JSON body is complete once parsed; a stream is complete only with a finish reason.
        if finish is None and streamed:
            raise LLMFailure("truncated: the stream ended without a finish reason (模型输出不完整)")
        if finish == "length":
            raise LLMFailure("truncated: the answer hit the token limit (模型输出被截断)")

    def _accept(self, question: str, extractive: Answer, passages: list[Passage], text: str, t0: float) -> Answer:
        text = text.strip()
        if is_decline(text):
            raise LLMFailure(
                "llm_declined: the LLM found no answer in passages that passed the refusal threshold "
                "(模型认为规划中未提及)"
            )
        problem = check_answer(text, [p.render(i) for i, p in enumerate(passages, 1)], question)
        if problem:
            raise LLMFailure(problem)
        text, mapping = renumber(text)
        citations = [
            self._citation(new, passages[old - 1], text) for old, new in sorted(mapping.items(), key=lambda kv: kv[1])
        ]
        return replace(
            extractive,
            answer=text,
            citations=tuple(citations),
            timings_ms=self._timings(extractive, t0),
            extra={**extractive.extra, "mode": "llm", "fallback_reason": None, "model": self.model},
        )

    @staticmethod
    def _citation(n: int, p: Passage, text: str) -> Citation:
        if p.quote:
            return Citation(n, p.chunk, p.quote, p.score, p.version)
        # The passage sentence sharing most character bigrams with the answer's sentences citing it.
        claims = normalise("".join(s.body for s in split_claims(text) if n in s.markers))
        grams = {claims[i : i + 2] for i in range(len(claims) - 1)}
        sents = split_sentences(p.chunk.text, drop_blank=True) or [p.chunk.text]

        def overlap(s: str) -> int:
            ns = normalise(s)
            return sum(1 for i in range(len(ns) - 1) if ns[i : i + 2] in grams)

        best = max(sents, key=overlap)  # max keeps the first on ties: the first sentence when none overlap
        return Citation(n, p.chunk, best.strip(), p.score, p.version)

    def _timings(self, extractive: Answer, t0: float) -> dict[str, float]:
        ms = (time.perf_counter() - t0) * 1000
        t = dict(extractive.timings_ms)
        t["llm"] = ms
        t["total"] = t.get("total", 0.0) + ms
        return t

    def _extractive(self, extractive: Answer, reason: str | None) -> Answer:
        return replace(extractive, extra={**extractive.extra, "mode": "extractive", "fallback_reason": reason})

    def _fallback(self, extractive: Answer, e: BaseException, t0: float) -> Answer:
        reason = _reason(e)
        log.warning("LLM answer not used (%s): %s", self.model, reason)
        out = self._extractive(extractive, reason)
        return replace(out, timings_ms=self._timings(extractive, t0), extra={**out.extra, "model": self.model})


def make_generator(settings: Settings, prompts: Prompts | None = None) -> LLMGenerator | None:
    """The LLM stage when an endpoint is configured, else None (extractive mode)."""
    return LLMGenerator(settings, prompts) if settings.llm_enabled else None
