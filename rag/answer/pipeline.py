"""The question-answering pipeline: scope → retrieve → select evidence → answer or abstain."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, NamedTuple, Protocol

from langchain_core.retrievers import BaseRetriever

from rag.answer.article import article_hits, article_missing, article_quote
from rag.answer.defined import defining_hits
from rag.answer.effective import effective_answer, repeal_unstated
from rag.answer.elsewhere import PlaceTexts
from rag.answer.parts import with_parts
from rag.answer.rerank import Reranker, blend, make_reranker
from rag.answer.retrieve import HybridRetriever
from rag.answer.score import AnswerParams, Scored, score_sentences, select_evidence
from rag.answer.select import context, rank, shipped_selector
from rag.answer.span import answer_span, shipped_model
from rag.answer.structure import lead_in_items, section_items
from rag.answer.timetable import timetable_answer
from rag.answer.versions import VersionedRetriever, answer_in_versions
from rag.core.errors import ScopeError
from rag.core.places import Gazetteer, gazetteer
from rag.core.settings import Settings
from rag.core.text import longest_first, normalise
from rag.core.types import Answer, Chunk, Citation, Hit
from rag.index.bm25 import bm25_idf
from rag.index.embed import Embedder, make_embedder
from rag.index.generations import KIND_SCOPE, UNPLACED, Index
from rag.query.guard import strip_instructions
from rag.query.question import Question, analyse
from rag.query.scope import Scope, detect_scope, held_by_level, held_places
from rag.query.synonyms import make_synonyms
from rag.query.terms import question_words
from rag.query.titles import unheld

ABSTAIN = "抱歉，已收录的文件中没有找到能回答这个问题的内容。以下是最相关的段落，供人工核对。"
CANDIDATES_FOR_ANSWER = 8
# Words that name a kind of document (metadata `kind`, read from each title at ingest).
KIND_NAMES = {"plan": re.compile(r"规划|纲要"), "regulation": re.compile(r"条例|实施办法|管理办法|实施细则")}
REALTIME = re.compile(r"明天|今天|昨天|后天|今晚|明早|此刻|现在几点|[本上下]周(?!期)")


class Candidates(NamedTuple):
    """What `ask` chooses an answer from, before the learned selector (eval/train_select.py)."""

    question: Question
    hits: list[Hit]  # every hit retrieved, best first
    head: list[Hit]  # the hits the sentences come from: the first ones and their defining articles
    scored: list[Scored]  # their sentences in the hand scorer's order


class Generator(Protocol):
    """An LLM stage over the extractive answer. It receives the extractive Answer (evidence,
    refusal decision, retrieved passages) and returns an Answer whose extra holds
    {"mode": "llm" | "extractive", "fallback_reason": str | None}. It never answers where the
    extractive stage abstained, so refusal stays exactly as strict."""

    name: str

    def refine(self, question: str, extractive: Answer) -> Answer: ...

    def refine_stream(self, question: str, extractive: Answer) -> Iterator[str | Answer]: ...

    def rewrite(self, question: str, history: list[str]) -> str: ...


class _Loaded:
    """Everything derived from one index generation. A reload swaps in a new one as a single
    reference, so a request never mixes two generations; the old one's Chroma client is closed
    when the last request that took it ends."""

    def __init__(self, index: Index, settings: Settings) -> None:
        self.index = index
        self.retriever = VersionedRetriever(index, settings)  # hybrid, current versions first
        self.idf = bm25_idf(index.bm25)
        self.by_doc: dict[str, list[Chunk]] = {}
        for c in sorted(index.chunks, key=lambda c: c.order):
            self.by_doc.setdefault(c.doc_id, []).append(c)
        # Place names are cut from questions before term matching (scope comes from metadata).
        held = held_places(index.districts)
        aliases = {a for p in held.values() for a in Gazetteer.aliases(p)}
        self.names = tuple(
            sorted(set(index.districts) | {d[:-1] for d in index.districts if len(d) > 2} | aliases, key=longest_first)
        )
        # Each place's texts and titles: for regulations and topics the searched places lack.
        self.places = PlaceTexts.of(self.by_doc.values(), self.names, UNPLACED)
        # Places some passage names: a question about one of them is not refused for its place.
        g = gazetteer()
        self.mentioned = {p.code for c in index.chunks for _, places in g.mentions(c.text) for p in places}
        question_words("预热")  # load jieba's dictionary now, not in a user's request
        self._lock = threading.Lock()
        self._users = 0
        self._retired = False

    def acquire(self) -> bool:
        with self._lock:
            if self._retired:
                return False
            self._users += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            done = self._retired and self._users == 0
        if done:
            self.index.close()

    def retire(self) -> None:
        with self._lock:
            self._retired = True
            done = self._users == 0
        if done:
            self.index.close()


class Pipeline:
    """A loaded index and embedder; thread-safe for concurrent `ask` calls."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        params: AnswerParams | None = None,
        generator: Generator | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.settings = settings
        self.generator = generator
        self.embedder = embedder or make_embedder(settings)
        self.params = params or AnswerParams()
        self._lock = threading.Lock()
        self._load(Index.open(settings, self.embedder))
        # After the index: a missing index should not cost a model load on every retry.
        self.reranker = reranker or make_reranker(settings)
        self.synonyms = make_synonyms(settings)
        shipped_model()  # the span model loads now, not in a user's first request
        self.selector = shipped_selector() if settings.selector == "learned" else None

    def _load(self, index: Index) -> None:
        self._st = _Loaded(index, self.settings)

    # The current generation's parts, for callers and tools; a request reads them from one snapshot.
    @property
    def index(self) -> Index:
        return self._st.index

    @property
    def retriever(self) -> HybridRetriever:
        return self._st.retriever

    @property
    def idf(self) -> dict[str, float]:
        return self._st.idf

    @property
    def by_doc(self) -> dict[str, list[Chunk]]:
        return self._st.by_doc

    def reload_if_changed(self) -> bool:
        """Pick up a newly swapped-in generation (after an ingest); queries keep the old one until then."""
        if self._st.index.is_current():
            return False
        with self._lock:
            if not self._st.index.is_current():
                old = self._st
                self._st = _Loaded(Index.open(self.settings, self.embedder), self.settings)
                old.retire()  # its Chroma client closes when its last in-flight request ends
                return True
        return False

    def _acquire(self) -> _Loaded:
        while True:
            st = self._st
            if st.acquire():
                return st

    @property
    def districts(self) -> list[str]:
        return self.index.districts

    def ask(self, question: str, district: str | None = None) -> Answer:
        """The answer to one stand-alone question (LLM-refined when a generator is set)."""
        extractive = self.ask_extractive(question, district)
        if self.generator is None:
            return replace(extractive, extra={**extractive.extra, "mode": "extractive", "fallback_reason": None})
        return self.generator.refine(question, extractive)

    def ask_stream(self, question: str, district: str | None = None) -> Iterator[str | Answer]:
        """Text deltas as they are produced, then the final Answer (whose text may differ from
        the deltas when the LLM answer was rejected and the extractive one replaces it)."""
        extractive = self.ask_extractive(question, district)
        if self.generator is None or extractive.abstained:
            final = (  # refine() passes an abstention through without calling the LLM
                self.generator.refine(question, extractive)
                if self.generator
                else replace(extractive, extra={**extractive.extra, "mode": "extractive", "fallback_reason": None})
            )
            for i in range(0, len(final.answer), 8):
                yield final.answer[i : i + 8]
            yield final
            return
        yield from self.generator.refine_stream(question, extractive)

    def ask_extractive(self, question: str, district: str | None = None) -> Answer:
        st = self._acquire()
        try:
            # Versions (rag.answer.versions): the version in force, or the older one the question names.
            return answer_in_versions(question, lambda q: self._ask(st, q, district), st.retriever.versions, st.by_doc)
        finally:
            st.release()

    def _ask(self, st: _Loaded, question: str, district: str | None) -> Answer:
        """The answer to the question with any instruction-like wrapper cut (rag.query.guard)."""
        asked, cut = strip_instructions(question.strip())
        if not cut:
            return self._answer(st, asked, district)
        if not asked:
            return Answer(
                question,
                ABSTAIN,
                True,
                (),
                (),
                {"retrieve": 0.0, "answer": 0.0, "total": 0.0},
                {"instructions_cut": True},
            )
        answer = self._answer(st, asked, district)
        return replace(answer, question=question, extra={**answer.extra, "instructions_cut": True})

    def _answer(self, st: _Loaded, question: str, district: str | None) -> Answer:
        t0 = time.perf_counter()
        question = question.strip()
        scope, districts, hits = self._retrieve(st, question, district)
        if (listed := timetable_answer(question, districts, st.index, st.by_doc)) is not None:
            ms = (time.perf_counter() - t0) * 1000  # answered from the 时间表 (rag.answer.timetable)
            return replace(listed, timings_ms={"retrieve": 0.0, "answer": ms, "total": ms})
        t1 = time.perf_counter()
        if scope.unknown and not districts:
            answer = self._refuse_unknown(question, scope.unknown, hits, st.index.districts)
        elif REALTIME.search(question):
            # Filed documents never state tomorrow's weather or today's news, however close a
            # passage on 气象预报 may look.
            answer = Answer(question, ABSTAIN, True, (), tuple(hits[: self.settings.top_k]), {}, {"realtime": True})
        else:
            q = self._analyse(st, question, scope.spoken)  # read by every later stage
            absent = self._absent(st, q, scope, districts, hits)
            answer = absent or self._compose(q, self._evidence(st, q, hits, districts), hits)
        t2 = time.perf_counter()
        timings = {"retrieve": (t1 - t0) * 1000, "answer": (t2 - t1) * 1000, "total": (t2 - t0) * 1000}
        return replace(answer, timings_ms=timings)

    def _retrieve(self, st: _Loaded, question: str, district: str | None) -> tuple[Scope, list[str], list[Hit]]:
        """The question's scope, the districts it is answered from, and the hits searched there."""
        held = st.index.districts
        if district and district not in held:
            raise ScopeError(
                f"知识库中没有{district}的文件；可选：{'、'.join(held)} "
                f"(no documents for {district}; the index holds: {', '.join(held)})"
            )
        scope = detect_scope(question, held, st.mentioned)
        districts = [district] if district else list(scope.districts)
        # "规划里…" asks the plans, "条例…" the regulations: the other kind would only crowd them out.
        search_scope = districts or self._kind_scope(st, question)
        above = [] if district else list(scope.above)
        unplaced = [UNPLACED] if districts and UNPLACED in st.index.district_masks else []  # never excluded
        k = max(self.settings.top_k, CANDIDATES_FOR_ANSWER * 2)
        hits = st.retriever.retrieve(
            question, k * 2 if above else k, [*search_scope, *above, *unplaced] if search_scope else None
        )
        if above:
            # The places above answer only where their passage names the place asked about.
            own = {*districts, UNPLACED}
            hits = [
                h
                for h in hits
                if (h.chunk.district or UNPLACED) in own
                or any(n in h.chunk.text or n in h.chunk.title for n in scope.above_names)
            ][:k]
        if scope.spoken and not districts:
            # A place only some passages speak of: those passages answer, or nothing does.
            hits = [h for h in hits if any(n in h.chunk.text or n in h.chunk.title for n in scope.spoken)]
        return scope, districts, hits

    def _analyse(self, st: _Loaded, question: str, spoken: tuple[str, ...]) -> Question:
        names = tuple(sorted({*st.names, *spoken}, key=longest_first))  # place names are scope, not topic
        return analyse(question, names, self.synonyms)

    def candidates(self, question: str, district: str | None = None) -> Candidates:
        """The candidates as `ask` sees them before the learned selector."""
        st = self._acquire()
        try:
            question = strip_instructions(question.strip())[0]
            scope, _, hits = self._retrieve(st, question, district)
            q = self._analyse(st, question, scope.spoken)
            head = _head(q, hits, st)
            return Candidates(q, hits, head, score_sentences(q, head, st.idf, self.params))
        finally:
            st.release()

    def _kind_scope(self, st: _Loaded, question: str) -> list[str]:
        """The scope of the one document kind the question names, if the index can search it alone."""
        named = [KIND_SCOPE + kind for kind, rx in KIND_NAMES.items() if rx.search(question)]
        return named if len(named) == 1 and named[0] in st.index.kind_scopes else []

    def _evidence(self, st: _Loaded, q: Question, hits: list[Hit], districts: list[str]) -> list[list[Scored]]:
        """Evidence per district: one group when scoped, else every district close to the best."""
        p = self.params
        top = _head(q, hits, st)
        if effect := effective_answer(q, top, st.by_doc):
            return [effect]  # the named document's own 本条例自…起施行
        if repeal_unstated(q, top, st.by_doc) or article_missing(q, top, st.by_doc):
            return []
        if quote := article_quote(q, top, st.by_doc):
            return [quote]  # "X条例第十条规定了什么": that article
        if named := article_hits(q, top, st.by_doc):  # the named article first, the retrieved beside it
            ids = {h.chunk.id for h in named}
            top = [*named, *(h for h in top if h.chunk.id not in ids)]
        structural = self._structural(st, q, top, districts)
        if structural:
            return structural
        scored = self._rerank(q.text, score_sentences(q, top, st.idf, p))
        if not scored:
            return []
        best = scored[0].score  # the hand score decides which further districts answer
        ranked = rank(q, scored, top, self.selector if self.reranker is None else None)  # a reranker judges itself
        # The coverage floor is the lexical stand-in for "on topic"; a reranker judges that itself.
        floor = p.min_coverage if self.reranker is None else 0.0
        refuse = best < self.settings.refusal_threshold or scored[0].coverage < floor
        mode = self.settings.refusal
        # "learned": the classifier decides; "rescue": it overrules the threshold when sure enough,
        # either way (answering above rescue_threshold, refusing below veto_threshold).
        judged = mode == "learned" or (mode == "rescue" and (refuse or self.settings.veto_threshold > 0))
        if self.selector is not None and self.reranker is None and judged:
            chance = self.selector.p_answer(ranked, context(q, top, st.idf))
            if chance is not None and mode == "learned":
                refuse = chance < self.selector.threshold
            elif chance is not None:
                refuse = chance < (self.settings.rescue_threshold if refuse else self.settings.veto_threshold)
        # Each part of a question of several, scored once: for refusal and for the evidence.
        parts = [score_sentences(part, top, st.idf, p) for part in q.parts]
        if refuse and parts and (first := parts[0]):
            # Two questions in one dilute each other's coverage: the first, which carries the
            # context, may answer on its own.
            if first[0].score >= self.settings.refusal_threshold and first[0].coverage >= floor:
                refuse = False
        if refuse:
            return []
        scored = ranked.scored

        def evidence(of: list[Scored]) -> list[Scored]:
            group = lead_in_items(select_evidence(of, p), st.by_doc)
            return with_parts(group, parts, self.settings.refusal_threshold)

        if districts or len(st.index.districts) < 2:
            return [evidence(scored)]
        groups: list[list[Scored]] = []
        seen: set[str | None] = set()
        for s in scored:
            d = s.hit.chunk.district
            if d in seen:
                continue
            seen.add(d)
            # The first is the chosen answer; other districts answer when close to the best.
            if not groups or s.score >= max(self.settings.refusal_threshold, p.district_ratio * best):
                groups.append(evidence([x for x in scored if x.hit.chunk.district == d]))
        return groups

    def _rerank(self, question: str, scored: list[Scored]) -> list[Scored]:
        """A configured reranker judges the best lexical candidates (see rerank.blend). Structural
        answers (a heading's items) never reach it: they are the document's own outline."""
        if self.reranker is None or not scored:
            return scored
        head = scored[: self.settings.rerank_top]
        texts = [
            f"{s.hit.chunk.section_path[-1] if s.hit.chunk.section_path else ''} {s.sentence}".strip() for s in head
        ]
        return blend(scored, self.reranker.score(question, texts), self.settings.rerank_weight)

    def _structural(self, st: _Loaded, q: Question, hits: list[Hit], districts: list[str]) -> list[list[Scored]]:
        """Per district, the items of a heading the question names ("哪些基本原则"), from the best hits."""
        groups: list[list[Scored]] = []
        for d in dict.fromkeys(h.chunk.district for h in hits[:3]):
            items = section_items(q, [h for h in hits[:3] if h.chunk.district == d], st.by_doc)
            if items:
                groups.append(items)
            if districts or len(st.index.districts) < 2:
                break
        return groups

    def _compose(self, q: Question, groups: list[list[Scored]], hits: list[Hit]) -> Answer:
        retrieved = tuple(hits[: self.settings.top_k])
        if not groups:
            return Answer(q.text, ABSTAIN, True, (), retrieved, {})
        citations: list[Citation] = []
        lines: list[str] = []
        for group in groups:
            by_chunk: dict[str, list[Scored]] = {}
            for s in group:
                by_chunk.setdefault(s.hit.chunk.id, []).append(s)
            parts: list[str] = []
            for sents in by_chunk.values():
                n = len(citations) + 1
                # Sentences that are not neighbours in the passage are marked apart, so that each
                # piece of the quote is text of the passage.
                quote = "".join(
                    ("……" if i and s.position != sents[i - 1].position + 1 else "") + s.sentence
                    for i, s in enumerate(sents)
                )
                citations.append(Citation(n, sents[0].hit.chunk, quote, max(s.score for s in sents)))
                parts.append("".join(s.sentence for s in sents) + f"[{n}]")
            prefix = f"{group[0].hit.chunk.district}：" if len(groups) > 1 and group[0].hit.chunk.district else ""
            lines.append(prefix + "".join(parts))
        span = answer_span(q, citations[0].quote)  # several places: the best one's
        return Answer(q.text, "\n".join(lines), False, tuple(citations), retrieved, {}, {"answer_span": span})

    def _refuse_unknown(self, question: str, unknown: tuple[str, ...], hits: list[Hit], districts: list[str]) -> Answer:
        held = held_by_level(districts)
        text = f"抱歉，知识库中没有{'、'.join(unknown)}的文件，无法回答。目前收录的地区有——{held}。"
        return self._refusal(question, text, hits, {"unknown_districts": list(unknown)})

    def _absent(self, st: _Loaded, q: Question, scope: Scope, districts: list[str], hits: list[Hit]) -> Answer | None:
        """The refusal when the searched places lack what the question names: a regulation by its
        title (rag.query.titles), or a topic only other places regulate (rag.answer.elsewhere)."""
        searched = [*districts, *scope.above, UNPLACED] if districts else list(st.places.cores)
        where = "、".join(d for d in searched if d) if len(searched) < 5 else ""
        missing = unheld(q.titles, {t for d in searched for t in st.places.cores.get(d, ())})
        # A title the passages themselves speak of (制定《…办法》) is theirs to answer on.
        if missing := [c for c in missing if not any(c in normalise(h.chunk.text) for h in hits)]:
            said = f"没有提问所说的“{'”“'.join(missing)}”"
            return self._refusal(
                q.text, f"抱歉，已收录的{where}文件中{said}，无法回答。", hits, {"unheld_titles": missing}
            )
        if districts and (topics := st.places.elsewhere(q, searched)):
            said = "；".join(f"“{w}”只见于{'、'.join(ps[:3])}的文件" for w, ps in topics)
            text = f"抱歉，已收录的{where}文件中没有讲到提问所说的内容（{said}），无法回答。"
            return self._refusal(q.text, text, hits, {"topic_elsewhere": [w for w, _ in topics]})
        return None

    def _refusal(self, question: str, text: str, hits: list[Hit], extra: dict[str, Any]) -> Answer:
        """A refusal that says why, with the nearest passages for a person to check."""
        retrieved = tuple(hits[: self.settings.top_k])
        return Answer(question, text + "以下是最相关的段落，供人工核对。", True, (), retrieved, {}, extra)

    def as_retriever(self, district: str | None = None, include_refused: bool = False) -> BaseRetriever:
        """This pipeline as a langchain `BaseRetriever` (see rag.answer.lc_retriever)."""
        from rag.answer.lc_retriever import PipelineRetriever

        return PipelineRetriever(pipeline=self, district=district, include_refused=include_refused)

    def documents(self) -> list[dict[str, Any]]:
        return self.index.documents


def _head(q: Question, hits: list[Hit], st: _Loaded) -> list[Hit]:
    """The hits an answer is chosen from: the first ones, and the articles of their documents
    that define the term the question asks about."""
    top = hits[:CANDIDATES_FOR_ANSWER]
    return top + defining_hits(q, top, st.by_doc)
