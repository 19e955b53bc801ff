"""HTTP APIs for help-desk integrations and evaluation scripts (FastAPI; never imports gradio).

    POST /api/ask               {"question", "history"?, "district"?} → the answer object (rag.answer.cite)
    GET  /api/documents         indexed documents (with chunks still waiting for vectors)
    GET  /api/facts             时间表: dated plan commitments (?place=&year=&before=YYYY-MM)
    POST /api/feedback          👍 / 👎 on an answer object
    GET  /healthz               documents count, districts, pending vectors and the fill's progress
    GET  /v1/models             OpenAI-compatible model list
    POST /v1/chat/completions   OpenAI-compatible chat (stream and non-stream), citations included
    /api/admin/...              upload / delete / re-index (X-Admin-Password header)

Questions pass the admission queue (rag.serve.admission: a few worker slots, a bounded FIFO
line, 429 + Retry-After when full) and then run in the threadpool, so the event loop never
blocks and `Pipeline.ask` is thread-safe (no global lock). Other endpoints are plain `def`.
Every string in a request must be encodable text: a lone surrogate ("\ud800") is a 400.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, File, Header, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from rag.answer.cite import answer_dict
from rag.answer.pipeline import Pipeline
from rag.core.errors import BackendError, IndexMissingError, RagError, UserError
from rag.core.settings import Settings
from rag.core.types import Answer
from rag.index.embed import Embedder
from rag.ingest.facts import Fact, filter_facts, plan_facts
from rag.query.followup import MAX_QUESTION_CHARS, rewrite, too_long
from rag.serve.admin import Admin, AdminAuthError, AdminDisabledError, AdminLockedError, BusyError
from rag.serve.admission import Admission, OverloadedError
from rag.serve.feedback import FeedbackStore

MODEL_ID = "zhengce-extractive"
MAX_HISTORY = 20
ALL_DISTRICTS = ("", "全部", "all", "*")

PipelineProvider = Callable[[], Pipeline]


class ApiError(Exception):
    """An error with an HTTP status and a bilingual message."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


class SafeJSONResponse(JSONResponse):
    """JSON with <, > and & escaped, so text from documents or users stays inert even if a
    client pastes the raw body into a page."""

    def __init__(self, content: Any, status_code: int = 200, **kwargs: Any) -> None:
        super().__init__(content, status_code, **kwargs)
        self.headers["X-Content-Type-Options"] = "nosniff"

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode("utf-8")


class LivePipeline:
    """The pipeline provider used by the app: loads on first use (so the app can start before the
    first ingest) and serves each new index generation once an ingest swaps it in."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, pipeline: Pipeline | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._pipe = pipeline
        self._lock = threading.Lock()

    def __call__(self) -> Pipeline:
        if self._pipe is None:
            with self._lock:
                if self._pipe is None:
                    self._pipe = Pipeline(self.settings, self._embedder)  # IndexMissingError if none yet
        self._pipe.reload_if_changed()
        return self._pipe


# -- the shared question path (also used by the Gradio UI) ------------------------------------


def _unencodable(value: object, depth: int = 0) -> str | None:
    """The first string in `value` (nested lists/dicts, keys too) that is not valid Unicode text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            return value[e.start : e.end]
        return None
    if depth > 20:  # JSON nesting is bounded by the parser; this only bounds the walk
        return None
    items: list[object] = []
    if isinstance(value, dict):
        items = [x for kv in value.items() for x in kv]
    elif isinstance(value, list | tuple):
        items = list(value)
    elif isinstance(value, BaseModel):
        items = [v for _, v in value]
    for item in items:
        bad = _unencodable(item, depth + 1)
        if bad is not None:
            return bad
    return None


def check_text(value: object, field: str) -> None:
    """400 if `value` holds a string that cannot be encoded (a lone UTF-16 surrogate from a JSON
    escape like "\\ud800"): it is not text, and would fail later in tokenising or in the response."""
    bad = _unencodable(value)
    if bad is not None:
        code = " ".join(f"U+{ord(ch):04X}" for ch in bad[:4])
        raise ApiError(
            400,
            f"{field} 含有无法编码的字符 {code}（孤立的代理项，不是有效文字），请检查输入 "
            f"({field} contains characters that cannot be encoded ({code}: a lone surrogate, not valid text))",
        )


def check_body(body: BaseModel) -> None:
    for name, value in body:
        check_text(value, name)


def check_question(question: object) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ApiError(422, "问题不能为空 (question must not be empty)")
    check_text(question, "question")
    q = question.strip()
    refusal = too_long(q)
    if refusal is not None:  # at the door: nothing downstream (rewrite, jieba, retrieval) sees it
        raise ApiError(400, refusal)
    return q


def check_district(district: str | None, held: Sequence[str]) -> str | None:
    if district is None or district.strip() in ALL_DISTRICTS:
        return None
    check_text(district, "district")
    d = district.strip()
    if d not in held:
        raise ApiError(
            400,
            f"未收录该地区：{d}。已收录：{'、'.join(held) or '（无）'} (unknown district {d!r}; the index holds: {', '.join(held)})",
            districts=list(held),
        )
    return d


@dataclass(frozen=True)
class Prepared:
    """A validated question, rewritten to stand alone, with the district to search."""

    question: str  # as asked
    standalone: str
    district: str | None


def prepare(
    pipe: Pipeline, question: object, history: Sequence[str | dict[str, Any]] = (), district: str | None = None
) -> Prepared:
    q = check_question(question)
    check_text(list(history), "history")
    # Only the recent turns matter for the scope; long items are cut so rewriting stays cheap.
    history = [h[:MAX_QUESTION_CHARS] if isinstance(h, str) else h for h in list(history)[-MAX_HISTORY:]]
    scope = check_district(district, pipe.districts)
    if pipe.generator is not None and history:
        # LLM mode: the model rewrites the follow-up; the district it names is found by the
        # pipeline's scope detection, so only an explicitly chosen district restricts retrieval.
        return Prepared(q, pipe.generator.rewrite(q, [_turn_text(h) for h in history]), scope)
    standalone, inferred = rewrite(q, history, pipe.districts, default=scope)
    return Prepared(q, standalone, scope or inferred)


def _turn_text(item: str | dict[str, Any]) -> str:
    """A history turn as text for the LLM rewrite: its stand-alone form when the client kept it."""
    if isinstance(item, str):
        return item
    return str(
        item.get("rewritten_question") or item.get("rewritten") or item.get("question") or item.get("content") or ""
    )


def finish(p: Prepared, answer: Answer) -> dict[str, Any]:
    """The answer object, with "rewritten_question" when the rewrite changed the question and
    "scope": the district searched (None: all)."""
    obj = answer_dict(answer)
    obj["question"] = p.question
    if p.standalone != p.question:
        obj["rewritten_question"] = p.standalone
    obj["scope"] = p.district
    return obj


def answer_question(
    pipe: Pipeline, question: object, history: Sequence[str | dict[str, Any]] = (), district: str | None = None
) -> dict[str, Any]:
    """Validate, rewrite a follow-up into a standalone question, ask, and return the answer object."""
    p = prepare(pipe, question, history, district)
    return finish(p, pipe.ask(p.standalone, district=p.district))


def stream_answer(pipe: Pipeline, p: Prepared) -> Iterator[str | dict[str, Any]]:
    """Text deltas as the pipeline produces them, then the final answer object. The final text can
    differ from the deltas (an LLM answer that failed its citation check is replaced)."""
    for item in pipe.ask_stream(p.standalone, district=p.district):
        yield item if isinstance(item, str) else finish(p, item)


# -- request bodies -----------------------------------------------------------------------------


class AskRequest(BaseModel):
    question: Any = None
    history: list[str | dict[str, Any]] = Field(default_factory=list)
    district: str | None = None


class FeedbackRequest(BaseModel):
    rating: str
    comment: str = ""
    answer: dict[str, Any]  # the object /api/ask returned


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, top_p, … are accepted and ignored
    model: str | None = None
    messages: list[ChatMessage]
    stream: bool = False
    district: str | None = None  # extension: pass with extra_body={"district": "金山区"}


# -- OpenAI compatibility -------------------------------------------------------------------------


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if p.get("type") in (None, "text"))
    return content or ""


def chat_content(obj: dict[str, Any]) -> str:
    """The assistant text: the answer with its [n] markers, then a short 参考来源 list."""
    lines = [obj["answer"]]
    if obj["citations"]:
        lines += ["", "参考来源："]
        for c in obj["citations"]:
            where = f"《{c['title']}》" + (f" › {c['section']}" if c["section"] else "")
            lines.append(f"[{c['n']}] {where}" + (f"（{c['district']}）" if c["district"] else ""))
    elif obj["abstained"] and obj["retrieved"]:
        lines += ["", "最相关的段落（供人工核对）："]
        for h in obj["retrieved"][:3]:
            lines.append(f"- 《{h['title']}》" + (f" › {h['section']}" if h["section"] else ""))
    return "\n".join(lines)


def _openai_error(status: int, message: str, code: str | None = None) -> SafeJSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return SafeJSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status
    )


def _pieces(text: str, size: int = 16) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


CORRECTION = "\n\n（以上生成内容未通过引文核对，以下为原文摘录的答案 / the generated text failed the citation check; the extracted answer follows）\n"


def _stream(deltas: Iterator[str | dict[str, Any]], cid: str, created: int) -> Iterator[str]:
    """SSE events: a role chunk, the answer's deltas as they come, the 参考来源 list, a stop chunk
    carrying the citations, then [DONE]."""
    base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID}

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return "data: " + json.dumps(chunk, ensure_ascii=False) + "\n\n"

    yield event({"role": "assistant", "content": ""})
    sent = ""
    try:
        for item in deltas:
            if isinstance(item, str):
                sent += item
                yield event({"content": item})
                continue
            tail = chat_content(item)
            # Normally the deltas are the answer itself and only the source list remains to send.
            tail = tail[len(sent) :] if tail.startswith(sent) else CORRECTION + tail
            for piece in _pieces(tail):
                yield event({"content": piece})
            yield event({}, "stop", citations=item["citations"], abstained=item["abstained"])
    except RagError as e:  # the status line is sent already: report in-band, as OpenAI does
        yield "data: " + json.dumps({"error": {"message": str(e), "type": "server_error"}}, ensure_ascii=False) + "\n\n"
    yield "data: [DONE]\n\n"


# -- the app --------------------------------------------------------------------------------------


def create_api(
    pipeline_provider: PipelineProvider,
    settings: Settings,
    *,
    admin: Admin | None = None,
    feedback: FeedbackStore | None = None,
) -> FastAPI:
    """The FastAPI app; app.py mounts the Gradio UI on it at "/" (after these routes)."""
    admin = admin or Admin(settings, pipeline_provider)
    store = feedback or FeedbackStore(settings.data_dir / "feedback.sqlite")
    admission = Admission(settings.ask_workers, settings.ask_queue)
    api = FastAPI(title="政策问答 zhengce API", default_response_class=SafeJSONResponse)
    api.state.admin = admin
    api.state.feedback = store
    api.state.admission = admission

    @api.exception_handler(OverloadedError)
    def _overloaded(request: Request, e: OverloadedError) -> SafeJSONResponse:
        r = (
            _openai_error(429, str(e), "overloaded")
            if request.url.path.startswith("/v1/")
            else SafeJSONResponse({"detail": str(e)}, status_code=429)
        )
        r.headers["Retry-After"] = str(e.retry_after)
        return r

    @api.exception_handler(ApiError)
    def _api_error(request: Request, e: ApiError) -> SafeJSONResponse:
        if request.url.path.startswith("/v1/"):
            return _openai_error(e.status, str(e))
        return SafeJSONResponse({"detail": str(e), **e.extra}, status_code=e.status)

    @api.exception_handler(RagError)
    def _rag_error(request: Request, e: RagError) -> SafeJSONResponse:
        if isinstance(e, AdminAuthError):
            status = 401
        elif isinstance(e, AdminDisabledError):
            status = 403
        elif isinstance(e, BusyError | AdminLockedError):
            status = 429
        elif isinstance(e, IndexMissingError | BackendError):
            status = 503
        else:
            status = 400 if isinstance(e, UserError) else 500
        r = (
            _openai_error(status, str(e))
            if request.url.path.startswith("/v1/")
            else SafeJSONResponse({"detail": str(e)}, status_code=status)
        )
        if isinstance(e, AdminLockedError):
            r.headers["Retry-After"] = str(e.retry_after)
        return r

    @api.exception_handler(RequestValidationError)
    def _invalid(request: Request, e: RequestValidationError) -> SafeJSONResponse:
        where = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()[:5])
        message = f"请求格式错误 (invalid request): {where}"
        if request.url.path.startswith("/v1/"):
            return _openai_error(422, message)
        return SafeJSONResponse({"detail": message}, status_code=422)

    @api.get("/healthz")
    def healthz() -> dict[str, Any]:
        pipe = pipeline_provider()
        docs = pipe.documents()
        return {
            "status": "ok",
            "documents": len(docs),
            "chunks": sum(int(d.get("chunks", 0)) for d in docs),
            "districts": pipe.districts,
            "admin": admin.enabled,
            "pending_vectors": (vec := admin.vector_status())["pending"],  # found by BM25 alone until filled
            "vectors": vec,
        }

    @api.get("/api/documents")
    def documents() -> dict[str, Any]:
        pipeline_provider()  # 503 with the how-to when there is no index yet
        return {"documents": admin.documents(), "vectors": admin.vector_status()}

    facts_cache: dict[str, list[Fact]] = {}  # per index generation: the facts change only on ingest

    @api.get("/api/facts")
    def facts(place: str | None = None, year: int | None = None, before: str | None = None) -> dict[str, Any]:
        index = pipeline_provider().index
        key = str(index.gen)
        all_facts = facts_cache.get(key)
        if all_facts is None:
            all_facts = plan_facts(index.chunks, index.documents)
            facts_cache.clear()
            facts_cache[key] = all_facts
        rows = filter_facts(all_facts, place or None, year, before or None)
        return {"facts": [f.to_dict() for f in rows]}

    @api.post("/api/ask")
    async def ask(body: AskRequest) -> dict[str, Any]:
        check_body(body)  # before queueing: bad input never takes a place in line
        async with admission.slot():
            return await run_in_threadpool(
                lambda: answer_question(pipeline_provider(), body.question, body.history, body.district)
            )

    @api.post("/api/feedback")
    def add_feedback(body: FeedbackRequest) -> dict[str, Any]:
        check_body(body)
        a = body.answer
        if not isinstance(a.get("question"), str) or not isinstance(a.get("answer"), str):
            raise ApiError(422, "answer 需要 /api/ask 返回的对象 (answer must be the object /api/ask returned)")
        fid = store.add(
            a["question"],
            a["answer"],
            a.get("citations") or [],
            body.rating,
            body.comment,
            abstained=bool(a.get("abstained")),
            district=a.get("scope"),
            rewritten_question=a.get("rewritten_question"),
        )
        return {"id": fid}

    @api.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "zhengce"}]}

    @api.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest) -> SafeJSONResponse | StreamingResponse:
        check_body(body)
        users = [_text(m.content) for m in body.messages if m.role == "user"]
        if not users or body.messages[-1].role != "user":
            raise ApiError(400, "最后一条消息必须来自用户 (the last message must have role 'user')")
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if body.stream:

            def start() -> Iterator[str | dict[str, Any]]:
                pipe = pipeline_provider()
                deltas = stream_answer(pipe, prepare(pipe, users[-1], users[:-1], body.district))
                first = next(deltas)  # retrieval runs now, so its errors still get a proper HTTP status
                return itertools.chain([first], deltas)

            # The slot covers retrieval (the CPU work); the rest of the stream is sent outside it,
            # so a slow reader or an LLM's tokens never hold a worker.
            async with admission.slot():
                deltas = await run_in_threadpool(start)
            return StreamingResponse(
                _stream(deltas, cid, created),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )

        def answer() -> dict[str, Any]:
            pipe = pipeline_provider()
            prepared = prepare(pipe, users[-1], users[:-1], body.district)
            return finish(prepared, pipe.ask(prepared.standalone, district=prepared.district))

        async with admission.slot():
            obj = await run_in_threadpool(answer)
        content = chat_content(obj)
        return SafeJSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": MODEL_ID,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                # Characters, not tokens: there is no tokenizer in an extractive pipeline.
                "usage": {
                    "prompt_tokens": len(users[-1]),
                    "completion_tokens": len(content),
                    "total_tokens": len(users[-1]) + len(content),
                },
                "citations": obj["citations"],
                "abstained": obj["abstained"],
                "rewritten_question": obj.get("rewritten_question"),
            }
        )

    _admin_routes(api, admin)
    return api


def _client(request: Request) -> str:
    """The peer address that admin password failures are counted under."""
    return request.client.host if request.client else "unknown"


def _admin_routes(api: FastAPI, admin: Admin) -> None:
    @api.post("/api/admin/documents")
    def upload(
        request: Request,
        files: Annotated[list[UploadFile], File()],
        x_admin_password: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        admin.check_password(x_admin_password, _client(request))
        saved = [admin.save_upload(f.filename or "", f.file) for f in files]
        job = admin.submit_ingest(saved)
        return {"job": job.to_dict(), "files": [p.name for p in saved]}

    @api.delete("/api/admin/documents/{doc_id}")
    def delete(
        request: Request, doc_id: str, x_admin_password: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        admin.check_password(x_admin_password, _client(request))
        return {"job": admin.submit_delete(doc_id).to_dict()}

    @api.post("/api/admin/reindex")
    def reindex(request: Request, x_admin_password: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        admin.check_password(x_admin_password, _client(request))
        return {"job": admin.submit_reindex().to_dict()}

    @api.get("/api/admin/jobs/{job_id}")
    def job(request: Request, job_id: int, x_admin_password: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        admin.check_password(x_admin_password, _client(request))
        j = admin.job(job_id)
        if j is None:
            raise ApiError(404, f"没有这个任务 (no job {job_id})")
        return {"job": j.to_dict()}
