"""政策问答 web app: the Gradio chat and knowledge-base tabs, mounted on the FastAPI app of
rag/api.py so the UI and the APIs share one server (127.0.0.1:7860 by default).

    .venv/bin/python app.py          (or `make run`, which builds the index first)

Everything from documents or users goes through `esc` before it reaches HTML: the Chatbot renders
markdown and HTML, so a plan or a question containing <script> must show as text.
"""

from __future__ import annotations

import itertools
import logging
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI

from rag.answer.fact_table import (
    COLUMNS,
    deadline_label,
    fact_passage,
    index_facts,
    select_facts,
    table_rows,
    write_csv,
    write_xlsx,
)
from rag.cli import quiet_and_fast
from rag.core.errors import BackendError, IndexMissingError, RagError, UserError
from rag.core.settings import Settings
from rag.core.text import split_sentences
from rag.core.types import content_hash
from rag.ingest.build import remove_abandoned_builds
from rag.ingest.facts import Fact
from rag.serve.admin import Admin, Job
from rag.serve.admission import Admission, OverloadedError
from rag.serve.api import ApiError, LivePipeline, PipelineProvider, create_api, prepare, stream_answer
from rag.serve.feedback import FeedbackStore
from rag.serve.uploads import UploadGuard, UploadLimits, UploadMiddleware, upload_folder

log = logging.getLogger("zhengce.app")

ALL = "全部"
MAX_TURNS = 50  # per browser session
EXAMPLES = (
    "金山区如何推进“一网通办”？",
    "“十三五”末金山区行政机关负责人出庭应诉率是多少？",
    "静安区如何推进重大行政决策合法性审查？",
    "两个区对行政机关负责人出庭应诉有什么要求？",
    "浦东新区的法治政府建设有哪些主要任务？",
)
FONTS = ["PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", "WenQuanYi Micro Hei", "system-ui", "sans-serif"]

CSS = """
.gradio-container { max-width: 1080px !important; margin: 0 auto !important; }
#zc-header h1 { font-size: 1.6rem; margin: .2rem 0; }
#zc-header p { color: var(--body-text-color-subdued); margin: 0; }
.zc-answer { line-height: 1.75; }
.zc-ref { color: var(--color-accent); font-weight: 600; font-size: .78em; margin: 0 1px; }
.zc-note { font-size: .85em; color: var(--body-text-color-subdued); margin-bottom: .4rem; }
.zc-cites-head, .zc-near-head { font-size: .85em; font-weight: 600; margin: .8rem 0 .3rem;
  color: var(--body-text-color-subdued); }
details.zc-cite { border: 1px solid var(--border-color-primary); border-radius: 8px; margin: .35rem 0;
  padding: .35rem .6rem; background: var(--background-fill-secondary); }
details.zc-cite > summary { cursor: pointer; list-style-position: outside; }
.zc-n { font-weight: 700; color: var(--color-accent); margin-right: .3rem; }
.zc-title { font-weight: 600; }
.zc-tag { display: inline-block; font-size: .75em; padding: 0 .45em; margin-left: .4rem; border-radius: 4px;
  background: var(--color-accent-soft); color: var(--color-accent); }
.zc-sec { display: block; font-size: .82em; color: var(--body-text-color-subdued); margin-top: .15rem; }
.zc-passage { margin-top: .45rem; line-height: 1.7; font-size: .92em; }
.zc-passage mark { background: #fde68a; color: inherit; padding: 0 1px; border-radius: 2px; }
.zc-meta { font-size: .75em; color: var(--body-text-color-subdued); margin-top: .35rem; }
.zc-refusal { border-left: 4px solid #d97706; background: #fffbeb; color: #78350f; padding: .55rem .8rem;
  border-radius: 6px; }
.zc-refusal-head { font-weight: 700; margin-bottom: .2rem; }
.zc-error { border-left: 4px solid #dc2626; background: #fef2f2; color: #7f1d1d; padding: .55rem .8rem;
  border-radius: 6px; }
.zc-pending { color: var(--body-text-color-subdued); }
#zc-examples button { font-size: .85rem; }
.zc-examples-head { font-size: .85rem; color: var(--body-text-color-subdued); margin-bottom: -.4rem; }
.zc-job { font-size: .9em; margin: .25rem 0; }
.zc-job progress { width: 220px; vertical-align: middle; margin: 0 .4rem; }
.zc-banner { border-left: 4px solid #d97706; background: #fffbeb; color: #78350f; padding: .5rem .8rem;
  border-radius: 6px; }
.zc-tt-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .55rem .8rem;
  background: var(--background-fill-secondary); }
.zc-tt-when { font-weight: 600; color: var(--color-accent); margin-right: .4rem; }
"""

# -- inert HTML ------------------------------------------------------------------------------

# Markdown/LaTeX punctuation becomes entities as well, so the Chatbot's markdown pass cannot turn
# document or user text into links, emphasis or formulas.
_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&#39;",
        **{c: f"&#{ord(c)};" for c in "*_`[]$~\\#|!{}"},
    }
)
_MARKER = re.compile(r"\[(\d+)\]")


def esc(text: object) -> str:
    """Text → inert HTML on one line (no blank line may end the Chatbot's HTML block)."""
    return str(text).translate(_ESCAPES).replace("\r", "").replace("\n", "<br>")  # one pass: no double escaping


def highlight(text: str, quote: str) -> str:
    """The passage with the supporting sentence(s) in <mark>, all of it escaped."""
    # A quote of sentences that are not neighbours comes in pieces separated by "……".
    pieces = [q for q in (quote or "").split("……") if q]
    parts = [
        p for q in pieces for p in ([q] if q in text else [s.strip() for s in split_sentences(q, drop_blank=True)])
    ]
    spans: list[tuple[int, int]] = []
    for p in parts:
        i = text.find(p) if p else -1
        if i >= 0:
            spans.append((i, i + len(p)))
    out, pos = [], 0
    for a, b in sorted(spans):
        if a < pos:
            a = pos
        if a >= b:
            continue
        out += [esc(text[pos:a]), "<mark>", esc(text[a:b]), "</mark>"]
        pos = b
    out.append(esc(text[pos:]))
    return "".join(out)


def _answer_text(answer: str, span: str | None = None) -> str:
    """The answer as HTML: [n] as superscripts, and the answer span emphasised where it first occurs."""
    pieces = _MARKER.split(answer)  # text, n, text, n, …
    out = [esc(p) if i % 2 == 0 else f'<sup class="zc-ref">[{int(p)}]</sup>' for i, p in enumerate(pieces)]
    html = "".join(out)
    if span and esc(span) in html:
        html = html.replace(esc(span), f'<strong class="zc-span">{esc(span)}</strong>', 1)
    return html


def _passage_card(p: dict[str, Any], n: int | None = None, quote: str = "") -> str:
    head = f'<span class="zc-n">[{n}]</span>' if n is not None else ""
    tag = f'<span class="zc-tag">{esc(p["district"])}</span>' if p.get("district") else ""
    sec = f'<span class="zc-sec">{esc(p["section"])}</span>' if p.get("section") else ""
    meta = f'<div class="zc-meta">来源文件：{esc(p.get("source", ""))} · 相关度 {float(p.get("score", 0)):.2f}</div>'
    return (
        f'<details class="zc-cite"><summary>{head}<span class="zc-title">《{esc(p.get("title", ""))}》</span>{tag}{sec}'
        f'</summary><div class="zc-passage">{highlight(p.get("text", ""), quote)}</div>{meta}</details>'
    )


def render_answer(obj: dict[str, Any]) -> str:
    """One assistant bubble: note on the rewrite, the answer with [n], then collapsible citations;
    a refusal gets its own styling and the nearest passages instead."""
    note = ""
    if obj.get("rewritten_question"):
        note = f"按上下文理解为：「{esc(obj['rewritten_question'])}」"
    if obj.get("scope"):
        note += ("　" if note else "") + f"检索范围：{esc(obj['scope'])}"
    out = [f'<div class="zc-note">{note}</div>'] if note else []
    if obj["abstained"]:
        out.append(
            f'<div class="zc-refusal"><div class="zc-refusal-head">⚠ 未找到依据，无法回答</div>{esc(obj["answer"])}</div>'
        )
        if obj["retrieved"]:
            out.append('<div class="zc-near-head">最相关的段落（供人工核对，不构成答案）：</div>')
            out += [_passage_card(h) for h in obj["retrieved"][:3]]
    else:
        out.append(f'<div class="zc-answer">{_answer_text(obj["answer"], obj.get("answer_span"))}</div>')
        out.append('<div class="zc-cites-head">引用来源（点击展开原文）：</div>')
        out += [_passage_card(c, c["n"], c["quote"]) for c in obj["citations"]]
    return '<div class="zc-bubble">' + "".join(out) + "</div>"


def render_turn(turn: dict[str, Any]) -> list[dict[str, str]]:
    user = {"role": "user", "content": f'<div class="zc-user">{esc(turn["question"])}</div>'}
    if turn.get("error"):
        body = f'<div class="zc-error">{esc(turn["error"])}</div>'
    elif turn.get("answer") is None:
        body = '<div class="zc-pending">正在检索…</div>'
    else:
        body = render_answer(turn["answer"])
    return [user, {"role": "assistant", "content": body}]


def render_chat(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [m for t in turns for m in render_turn(t)]


# -- chat handlers ---------------------------------------------------------------------------


def _district_choices(provider: PipelineProvider) -> list[str]:
    try:
        return [ALL, *provider().districts]
    except RagError:
        return [ALL]


def _error_text(e: Exception) -> str:
    if isinstance(e, ApiError | UserError | OverloadedError):
        return str(e)
    if isinstance(e, BackendError):
        return f"后端暂时不可用，请稍后再试 (backend error: {e})"
    log.exception("chat failed")
    return f"内部错误，请联系管理员 (internal error: {type(e).__name__})"


def make_ask(
    provider: PipelineProvider, admission: Admission | None = None
) -> Callable[..., Iterator[tuple[Any, ...]]]:
    """The chat handler. With `admission` (the API's queue), retrieval waits its turn in the same
    FIFO line as /api/ask and /v1/chat/completions; the streamed rest runs outside the slot."""

    def ask(message: str, scope: str, turns: list[dict[str, Any]] | None) -> Iterator[tuple[Any, ...]]:
        turns = list(turns or [])[-MAX_TURNS:]
        if not (message or "").strip():
            yield render_chat(turns), turns, ""
            return
        turn: dict[str, Any] = {"question": message.strip(), "answer": None}
        yield render_chat([*turns, turn]), turns, ""
        history = [
            {"question": t["question"], "rewritten": t.get("rewritten"), "district": t.get("district")}
            for t in turns
            if t.get("answer")
        ]
        head = [*render_chat(turns), render_turn(turn)[0]]
        obj: dict[str, Any] | None = None
        try:
            with admission.blocking_slot() if admission is not None else nullcontext():
                pipe = provider()
                prepared = prepare(pipe, message, history, None if scope in (None, "", ALL) else scope)
                items = stream_answer(pipe, prepared)
                first = next(items, None)  # retrieval runs now, inside the slot
            text = ""
            for item in itertools.chain([] if first is None else [first], items):
                if isinstance(item, str):
                    text += item
                    bubble = f'<div class="zc-answer">{_answer_text(text)}▍</div>'
                    yield [*head, {"role": "assistant", "content": bubble}], turns, ""
                else:
                    obj = item
            if obj is None:
                raise BackendError("没有得到答案 (the pipeline returned no answer)")
        except Exception as e:  # noqa: BLE001 - every failure becomes a visible, readable bubble
            turn["error"] = _error_text(e)
            yield render_chat([*turns, turn]), turns, ""
            return
        turn.update(rewritten=obj.get("rewritten_question"), district=obj.get("scope"))
        turn["answer"] = obj
        turns = [*turns, turn]
        yield render_chat(turns), turns, ""

    return ask


def rate(
    store: FeedbackStore, turns: list[dict[str, Any]] | None, index: int, rating: str, comment: str
) -> tuple[str, str]:
    """Store a rating of turn `index`; returns (status text, cleared comment box)."""
    turns = turns or []
    if not 0 <= index < len(turns) or turns[index].get("answer") is None:
        return "没有可评价的回答 (nothing to rate yet)", comment
    obj = turns[index]["answer"]
    store.add(
        obj["question"],
        obj["answer"],
        obj["citations"],
        rating,
        comment or "",
        abstained=obj["abstained"],
        district=obj.get("scope"),
        rewritten_question=obj.get("rewritten_question"),
    )
    icon = "👍" if rating == "up" else "👎"
    return f"已记录对第 {index + 1} 条回答的 {icon} 评价，谢谢！", ""


def make_like(store: FeedbackStore) -> Callable[..., tuple[str, str]]:
    def on_like(data: gr.LikeData, comment: str, turns: list[dict[str, Any]] | None) -> tuple[str, str]:
        index = data.index[0] if isinstance(data.index, tuple | list) else int(data.index)
        liked = data.liked is True or data.liked == "Like"
        return rate(store, turns, index // 2, "up" if liked else "down", comment)  # user, assistant, user, …

    return on_like


def make_rate_last(store: FeedbackStore, rating: str) -> Callable[..., tuple[str, str]]:
    def rate_last(comment: str, turns: list[dict[str, Any]] | None) -> tuple[str, str]:
        return rate(store, turns, len(turns or []) - 1, rating, comment)

    return rate_last


# -- admin handlers --------------------------------------------------------------------------

DOC_HEADERS = ["标题", "地区", "段落数", "来源文件", "收录时间"]


def _doc_rows(admin: Admin) -> list[list[Any]]:
    return [
        [
            d["title"],
            d["district"] or "-",
            d["chunks"],
            d["source"] + ("（上传）" if d["uploaded"] else ""),
            d["ingested_at"].replace("T", " ")[:19],
        ]
        for d in admin.documents()
    ]


def _doc_choices(admin: Admin) -> list[tuple[str, str]]:
    return [(f"《{d['title']}》 {d['source']}", d["doc_id"]) for d in admin.documents()]


def render_jobs(jobs: list[Job]) -> str:
    if not jobs:
        return '<div class="zc-job">暂无任务。</div>'
    rows = []
    for j in jobs[:5]:
        kind = {"upload": "上传", "delete": "删除", "reindex": "重新索引"}.get(j.kind, j.kind)
        if j.state == "queued":
            state = "排队中"
        elif j.state == "running":
            bar = f'<progress max="{j.total}" value="{j.done}"></progress>{j.done}/{j.total}' if j.total else ""
            state = f"进行中：{esc(j.phase)}{bar}"
        elif j.state == "done":
            state = f"✅ 完成：{esc(j.message)}"
        else:
            state = f"❌ 失败：{esc(j.message)}"
        rows.append(f'<div class="zc-job">#{j.id} {kind}「{esc(j.label)}」— {state}</div>')
    return "".join(rows)


def _notice(text: str, ok: bool = False) -> str:
    return f'<div class="{"zc-job" if ok else "zc-error"}">{esc(text)}</div>'


# -- 时间表 handlers ---------------------------------------------------------------------------

TT_SORTS = {"期限": "deadline", "地区": "place", "章节": "section"}
TT_HINT = '<div class="zc-note">点击表格中的一行，查看该承诺的原文段落（文件、章节、地区）。</div>'


def timetable_choices(provider: PipelineProvider) -> tuple[list[str], list[str]]:
    """The place and year filter choices of the current index (全部 first)."""
    try:
        facts = index_facts(provider().index)
    except RagError:
        return [ALL], [ALL]
    places = sorted({f.place for f in facts if f.place})
    years = sorted({f.year for f in facts if f.year is not None})
    return [ALL, *places], [ALL, *map(str, years)]


def timetable_view(
    provider: PipelineProvider, out_dir: Path, place: str, year: str, before: str, text: str, sort: str
) -> tuple[list[list[Any]], list[Fact], str | None, str | None, str]:
    """The filtered table: its rows, the facts behind them, the CSV and Excel files, a note."""
    try:
        pipe = provider()
        facts = select_facts(
            index_facts(pipe.index),
            place=None if place in (None, "", ALL) else place,
            year=int(year) if str(year or "").isdigit() else None,  # 全部 → no year filter
            before=(before or "").strip() or None,
            text=text,
            sort=TT_SORTS.get(sort, "deadline"),
        )
        key = content_hash(str(pipe.index.gen), str(place), str(year), str(before), str(text), str(sort))
    except RagError as e:
        return [], [], None, None, f'<div class="zc-error">{esc(_error_text(e))}</div>'
    folder = out_dir / key
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, xlsx_path = write_csv(facts, folder / "时间表.csv"), write_xlsx(facts, folder / "时间表.xlsx")
    named = (("地区", place), ("年份", year), ("截止", before), ("关键词", text))
    shown = [(k, str(v).strip()) for k, v in named if str(v or "").strip() not in ("", ALL)]
    where = " · ".join(f"{k}：{v}" for k, v in [*shown, ("排序", sort or "期限")])
    note = f'<div class="zc-note">共 {len(facts)} 条有期限的承诺（{esc(where)}）。</div>'
    return table_rows(facts), facts, str(csv_path), str(xlsx_path), note


def timetable_passage(provider: PipelineProvider, facts: list[Fact], row: list[Any] | None) -> str:
    """The cited passage of the selected row (found by its 序号, so a re-sorted table still opens
    the right one): document title, place, section path, the passage with the sentence marked."""
    try:
        f = facts[int(row[0]) - 1] if row else None
    except (ValueError, TypeError, IndexError):
        f = None
    if f is None:
        return TT_HINT
    try:
        passage = fact_passage(f, provider().by_doc.get(f.doc_id, ()))
    except RagError as e:
        return f'<div class="zc-error">{esc(_error_text(e))}</div>'
    if passage is None:
        return f'<div class="zc-error">{esc("原文段落已不在当前索引中 (the passage is no longer in the index)")}</div>'
    tag = f'<span class="zc-tag">{esc(f.place)}</span>' if f.place else ""
    extra = "".join(f" · {k}：{esc(v)}" for k, v in (("牵头单位", f.lead), ("目标", f.target)) if v)
    return (
        f'<div class="zc-tt-card"><span class="zc-tt-when">{esc(deadline_label(f))}</span>'
        f'<span class="zc-title">《{esc(f.title)}》</span>{tag}<span class="zc-sec">{esc(f.section)}</span>'
        f'<div class="zc-passage">{highlight(passage.chunk.text, passage.quote)}</div>'
        f'<div class="zc-meta">来源文件：{esc(passage.chunk.source)}{extra}</div></div>'
    )


def timetable_tab(provider: PipelineProvider, demo: gr.Blocks, tab: gr.Tab) -> None:
    """The 时间表 tab's components and events (inside its `with gr.Tab`)."""
    out_dir = Path(tempfile.mkdtemp(prefix="zhengce-timetable-"))
    places, years = timetable_choices(provider)
    with gr.Row(equal_height=True):
        place = gr.Dropdown(places, value=ALL, label="地区", elem_id="zc-tt-place", min_width=120)
        year = gr.Dropdown(years, value=ALL, label="年份", elem_id="zc-tt-year", min_width=100)
        before = gr.Textbox(label="截止（含）", placeholder="YYYY-MM，如 2023-12", max_lines=1, elem_id="zc-tt-before")
        text = gr.Textbox(label="关键词", placeholder="如：行政复议", max_lines=1, elem_id="zc-tt-text")
        go = gr.Button("筛选", variant="primary", scale=0, min_width=80, elem_id="zc-tt-go")
    with gr.Row():
        sort = gr.Radio(list(TT_SORTS), value="期限", label="排序", scale=2, elem_id="zc-tt-sort")
        csv_btn = gr.DownloadButton("下载 CSV", size="sm", scale=1, elem_id="zc-tt-csv")
        xlsx_btn = gr.DownloadButton("下载 Excel", size="sm", scale=1, elem_id="zc-tt-xlsx")
    note = gr.HTML(elem_id="zc-tt-note")
    table = gr.Dataframe(
        headers=list(COLUMNS),
        datatype=["number", "str", "str", "str", "str", "str", "str", "str", "str"],
        interactive=False,
        wrap=True,
        max_height=520,
        column_widths=["4%", "9%", "6%", "12%", "33%", "7%", "7%", "12%", "10%"],
        elem_id="zc-tt-table",
    )
    passage = gr.HTML(TT_HINT, elem_id="zc-tt-passage")
    shown = gr.State([])

    def refresh(*filters: str) -> tuple[Any, ...]:
        rows, facts, csv_path, xlsx_path, text_note = timetable_view(provider, out_dir, *filters)
        return rows, facts, gr.update(value=csv_path), gr.update(value=xlsx_path), text_note, TT_HINT

    def choices(p: str, y: str) -> tuple[Any, Any]:
        ps, ys = timetable_choices(provider)
        return gr.update(choices=ps, value=p if p in ps else ALL), gr.update(choices=ys, value=y if y in ys else ALL)

    def open_row(facts: list[Fact], evt: gr.SelectData) -> str:
        return timetable_passage(provider, facts, evt.row_value)

    filters = [place, year, before, text, sort]
    view = [table, shown, csv_btn, xlsx_btn, note, passage]
    triggers = [place.change, year.change, sort.change, before.submit, text.submit, go.click]
    gr.on(triggers, refresh, filters, view, api_name="timetable")
    for event in (demo.load, tab.select):
        event(choices, [place, year], [place, year], api_visibility="private").then(
            refresh, filters, view, api_visibility="private"
        )
    table.select(open_row, [shown], passage, api_visibility="private")


# -- the Blocks --------------------------------------------------------------------------------


def build_ui(
    provider: PipelineProvider,
    settings: Settings,
    admin: Admin,
    store: FeedbackStore,
    admission: Admission | None = None,
) -> gr.Blocks:
    ask = make_ask(provider, admission)

    def banner() -> str:
        try:
            pipe = provider()
        except IndexMissingError:
            return (
                '<div class="zc-banner">索引尚未建立：请在终端运行 <code>make run</code>（会先建立索引），'
                "或 <code>.venv/bin/rag ingest data/docs</code>；也可在“知识库管理”中上传文件。"
                "(No index yet: run <code>make run</code> or <code>rag ingest data/docs</code>.)</div>"
            )
        except RagError as e:
            return f'<div class="zc-error">{esc(e)}</div>'
        docs = pipe.documents()
        line = f"<p>已收录 {len(docs)} 份文件（{esc('、'.join(pipe.districts) or '无')}）。答案均摘自原文并标注出处；找不到依据时会明确说明。</p>"
        vec = admin.vector_status()
        if vec["pending"]:
            fill = vec.get("fill") or {}
            done = f"，进度 {fill.get('done')}/{fill.get('total')}" if fill.get("running") and fill.get("total") else ""
            line += (
                f'<div class="zc-banner" id="zc-vectors">向量化进行中：{vec["pending"]}/{vec["chunks"]} 段尚无向量{done}，'
                f"这些段落暂按关键词检索 (BM25)，已可查询。({vec['pending']} chunks wait for vectors; "
                "they are searchable by keywords meanwhile.)</div>"
            )
        return line

    def guarded(fn: Callable[..., Job | list[Job]]) -> Callable[..., tuple[str, Any]]:
        def run(request: gr.Request, password: str, *args: Any) -> tuple[str, Any]:  # gradio injects request
            try:
                admin.check_password(password, request.client.host if request and request.client else "unknown")
                fn(*args)
            except (UserError, ApiError) as e:
                return _notice(str(e)) + render_jobs(admin.jobs()), gr.Timer(active=admin.busy())
            return render_jobs(admin.jobs()), gr.Timer(active=True)

        return run

    def upload(files: list[str] | str | None) -> list[Job]:
        paths = [files] if isinstance(files, str) else list(files or [])
        if not paths:
            raise ApiError(400, "请先选择文件 (choose a file first)")
        saved = []
        for p in paths:
            with open(p, "rb") as f:
                saved.append(admin.save_upload(Path(p).name, f))
        return [admin.submit_ingest(saved)]

    def delete(doc_id: str | None) -> list[Job]:
        if not doc_id:
            raise ApiError(400, "请先选择要删除的文件 (choose a document first)")
        return [admin.submit_delete(doc_id)]

    def reindex() -> list[Job]:
        return [admin.submit_reindex()]

    def poll() -> tuple[Any, ...]:
        busy = admin.busy()
        return (
            render_jobs(admin.jobs()),
            _doc_rows(admin),
            gr.update(choices=_doc_choices(admin), value=None),
            gr.update(choices=_district_choices(provider)),
            gr.Timer(active=busy),
        )

    with gr.Blocks(title="政策问答 · 法治政府建设规划") as demo:
        turns = gr.State([])
        gr.HTML(
            "<h1>政策问答</h1><p>政府规划文件的有据问答：答案摘自原文，并注明文件、地区和章节。</p>",
            elem_id="zc-header",
        )
        status = gr.HTML(banner, elem_id="zc-status", every=10.0)  # refreshed: vector-fill progress
        with gr.Tabs():
            with gr.Tab("问答", id="chat"):
                with gr.Row(equal_height=True):
                    scope = gr.Dropdown(
                        _district_choices(provider), value=ALL, label="检索范围", scale=1, min_width=140
                    )
                    gr.HTML(
                        scale=2,
                        value="<p style='margin:.6rem 0'>对话会记住上文的地区：问完金山区后可以接着问“那静安区呢？”或“它的考核要求是什么？”。</p>",
                    )
                chatbot = gr.Chatbot(
                    label="对话",
                    show_label=False,
                    elem_id="zc-chat",
                    height=540,
                    latex_delimiters=[],
                    buttons=["copy"],
                    placeholder="<div style='text-align:center;opacity:.7'>请输入问题，或点击下方的示例问题。</div>",
                )
                with gr.Row(equal_height=True):
                    msg = gr.Textbox(
                        show_label=False,
                        placeholder="输入问题，按回车发送（最多 500 字）",
                        scale=8,
                        max_lines=4,
                        elem_id="zc-input",
                    )
                    send = gr.Button("提问", variant="primary", scale=1, min_width=90)
                    clear = gr.Button("新对话", scale=1, min_width=90)
                gr.HTML('<div class="zc-examples-head">试试这些问题：</div>')
                with gr.Row(elem_id="zc-examples"):
                    example_buttons = [gr.Button(q, size="sm", variant="secondary") for q in EXAMPLES]
                with gr.Accordion("对回答的评价（👍 / 👎，可附意见）", open=False):
                    gr.HTML(
                        "<p>点击回答右下角的 👍 / 👎，或用下面的按钮评价最近一条回答。意见会连同问题、回答和引用一起保存，用于改进。</p>"
                    )
                    with gr.Row(equal_height=True):
                        comment = gr.Textbox(
                            show_label=False, placeholder="（可选）意见，例如：答案不完整、应引用哪一节", scale=6
                        )
                        up = gr.Button("👍 有用", scale=1, min_width=90)
                        down = gr.Button("👎 不准确", scale=1, min_width=90)
                    fb_status = gr.Markdown()
            with gr.Tab("时间表", id="timetable") as timetable:
                timetable_tab(provider, demo, timetable)
            with gr.Tab("知识库管理", id="admin"):
                if not admin.enabled:
                    gr.HTML(f'<div class="zc-banner">{esc(admin.disabled_reason)}</div>')
                password = gr.Textbox(label="管理密码", type="password", interactive=admin.enabled, max_lines=1)
                with gr.Row():
                    files = gr.File(
                        label=f"上传文件（.txt .md .pdf .docx，单个不超过 {settings.max_upload_mb} MB）",
                        file_count="multiple",
                        file_types=[".txt", ".md", ".pdf", ".docx"],
                        interactive=admin.enabled,
                        scale=3,
                    )
                    with gr.Column(scale=2):
                        upload_btn = gr.Button("上传并索引", variant="primary", interactive=admin.enabled)
                        doc_pick = gr.Dropdown(
                            _doc_choices(admin),
                            label="选择文件",
                            interactive=admin.enabled,
                            allow_custom_value=True,  # the list changes after uploads; delete checks the id
                        )
                        delete_btn = gr.Button("删除所选文件", variant="stop", interactive=admin.enabled)
                        reindex_btn = gr.Button("重新索引（文档目录与上传目录）", interactive=admin.enabled)
                jobs_html = gr.HTML(render_jobs(admin.jobs()), label="任务")
                docs_table = gr.Dataframe(
                    _doc_rows(admin),
                    headers=DOC_HEADERS,
                    interactive=False,
                    label="已收录的文件",
                    wrap=True,
                    elem_id="zc-docs",
                )
                timer = gr.Timer(1.0, active=False)

        ask_io: dict[str, Any] = {"inputs": [msg, scope, turns], "outputs": [chatbot, turns, msg]}
        msg.submit(ask, **ask_io, api_name="ask")
        send.click(ask, **ask_io, api_name="ask_button", api_visibility="undocumented")
        for b, q in zip(example_buttons, EXAMPLES, strict=True):
            b.click(lambda q=q: q, None, msg, queue=False, api_visibility="private").then(
                ask, **ask_io, api_visibility="private"
            )
        clear.click(lambda: ([], [], ""), None, [chatbot, turns, fb_status], queue=False, api_name="new_chat")
        chatbot.like(
            make_like(store), [comment, turns], [fb_status, comment], api_name="like", api_visibility="undocumented"
        )
        up.click(make_rate_last(store, "up"), [comment, turns], [fb_status, comment], api_name="feedback_up")
        down.click(make_rate_last(store, "down"), [comment, turns], [fb_status, comment], api_name="feedback_down")

        admin_out = [jobs_html, timer]
        upload_btn.click(guarded(upload), [password, files], admin_out, api_name="admin_upload")
        delete_btn.click(guarded(delete), [password, doc_pick], admin_out, api_name="admin_delete")
        reindex_btn.click(guarded(reindex), [password], admin_out, api_name="admin_reindex")
        poll_out = [jobs_html, docs_table, doc_pick, scope, timer]
        timer.tick(poll, None, poll_out, api_name="admin_status", api_visibility="undocumented")
        demo.load(poll, None, poll_out, api_visibility="private").then(banner, None, status, api_visibility="private")
    return demo


def build_app(
    settings: Settings,
    provider: PipelineProvider | None = None,
    *,
    admin: Admin | None = None,
    feedback: FeedbackStore | None = None,
) -> FastAPI:
    """The one ASGI app: the APIs of rag/api.py with the Gradio UI mounted at "/"."""
    # A kill -9 mid-ingest leaves a half-built generation; remove it unless an ingest is live.
    remove_abandoned_builds(settings)
    provider = provider or LivePipeline(settings)
    admin = admin or Admin(settings, provider)
    store = feedback or FeedbackStore(Path(settings.data_dir) / "feedback.sqlite")
    api = create_api(provider, settings, admin=admin, feedback=store)
    uploads = UploadGuard(upload_folder(), UploadLimits.from_settings(settings))  # before Gradio reads the folder
    uploads.clean()
    api.state.uploads = uploads
    demo = build_ui(provider, settings, admin, store, api.state.admission)  # the chat shares /api/ask's line
    # Fair queueing: a few handlers run at once, the rest wait in line instead of failing.
    demo.queue(default_concurrency_limit=8, max_size=256)
    theme = gr.themes.Soft(primary_hue="red", neutral_hue="slate", font=FONTS, font_mono=["monospace"])
    # Gradio's own upload route: size, count, types, per-client budget, bounded folder, no server path.
    api.add_middleware(UploadMiddleware, guard=uploads)
    return gr.mount_gradio_app(
        api,
        demo,
        path="/",
        theme=theme,
        css=CSS,
        footer_links=["api"],
        max_file_size=f"{settings.max_upload_mb}mb",
        ssr_mode=False,
    )


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` with uvicorn on a background thread (tests, notebooks); yields its base URL.
    Port 0 binds a free port, handed to uvicorn as an open socket so no other process can take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_and_fast()
    settings = Settings.from_env()
    provider = LivePipeline(settings)
    try:
        pipe = provider()
        print(
            f"已载入索引 {settings.index_dir}：{len(pipe.documents())} 份文件（{'、'.join(pipe.districts)}）",
            file=sys.stderr,
        )
    except IndexMissingError:
        print(
            f"⚠ 索引不存在 (no index at {settings.index_dir})。请先建立索引 (build it first):\n"
            "    make run                      # 建立索引并启动 (ingests data/docs, then starts the app)\n"
            f"    .venv/bin/rag ingest data/docs --index {settings.index_dir}\n"
            "应用仍会启动；可在“知识库管理”上传文件建立索引 (the app starts anyway; upload files in the admin tab).",
            file=sys.stderr,
        )
    except RagError as e:
        print(f"错误 error: {e}", file=sys.stderr)
        return 2
    app = build_app(settings, provider)
    print(f"政策问答 → http://{settings.host}:{settings.port}/  (API: /api/ask, /v1/chat/completions)", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
