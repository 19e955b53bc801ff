"""Knowledge-base administration: uploads, deletes and re-indexing as background jobs.

Jobs run one at a time on a single worker thread, off the request path. `ingest` builds the next
index generation aside and swaps it in, so questions keep being answered from the old index until
the swap; the worker then calls `reload_if_changed()` so this process serves the new one.

Ingest is BM25-first: an upload is searchable once it is chunked, and its vectors are filled in
behind by one more background thread (`VectorFiller`), started after every ingest job and at
start-up when the current generation still has pending chunks. It resumes from the embedding
cache, so a restart never embeds a chunk twice.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import os
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from rag.answer.pipeline import Pipeline
from rag.core.errors import IndexMissingError, InputError, RagError, UserError
from rag.core.settings import Settings
from rag.index.embed import Embedder, make_embedder
from rag.index.generations import vector_status
from rag.ingest.build import IngestReport, ingest
from rag.ingest.fill import FillReport, fill_vectors
from rag.ingest.load import SUPPORTED

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 120
# Letters/digits of any script (Chinese included), spaces and a few safe punctuation marks.
_NAME_OK = re.compile(r"^[\w\u3000-\u303f\uff08\uff09\u300a\u300b\u00b7 .()\-+，、]+$")
_CHUNK = 1 << 20


class AdminDisabledError(UserError):
    """No admin password configured."""


class AdminAuthError(UserError):
    """Wrong or missing admin password."""


class BusyError(UserError):
    """Too many jobs queued."""


class AdminLockedError(UserError):
    """Too many wrong passwords from this client: wait `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


THROTTLE_FROM = 3  # wrong tries allowed back to back; from then on each retry waits 1, 2, 4 … s
THROTTLE_MAX_S = 60
FAILURE_WINDOW_S = 3600  # failures older than this are forgotten


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class PasswordGuard:
    """Per-client throttling and lockout of admin password tries, compared in constant time.

    A client that is throttled or locked out is refused before its password is looked at, so
    guessing during the wait gains nothing. Clients are keyed by address (the proxy's address
    when behind one). State is in memory: a restart forgets it, which only helps the owner."""

    def __init__(self, password: str | None, max_failures: int, lockout_s: int) -> None:
        # Digests of equal length: compare_digest then leaks neither content nor length.
        self._digest = hashlib.sha256(password.encode("utf-8")).digest() if password else None
        self.max_failures = max(1, max_failures)
        self.lockout_s = max(1, lockout_s)
        self._by_client: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def check(self, password: str | None, client: str, now: float | None = None) -> bool:
        """True if right; False if wrong (and counted); AdminLockedError while the client must wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            f = self._by_client.get(client)
            if f is not None and now - f.last > FAILURE_WINDOW_S and now >= f.locked_until:
                del self._by_client[client]
                f = None
            if f is not None:
                wait = self._wait(f, now)
                if wait > 0:
                    locked = f.locked_until > now
                    raise AdminLockedError(
                        (
                            f"管理密码错误次数过多，已锁定，请 {wait} 秒后再试 (too many wrong admin passwords: locked out, retry in {wait} s)"
                            if locked
                            else f"管理密码错误次数过多，请 {wait} 秒后再试 (too many wrong admin passwords: retry in {wait} s)"
                        ),
                        wait,
                    )
            given = hashlib.sha256((password or "").encode("utf-8", "surrogatepass")).digest()
            if self._digest is not None and hmac.compare_digest(given, self._digest):
                self._by_client.pop(client, None)
                return True
            f = self._by_client.setdefault(client, _Failures())
            f.count += 1
            f.last = now
            if f.count >= self.max_failures:
                f.locked_until = now + self.lockout_s
            if len(self._by_client) > 10_000:  # bounded memory under a spray of addresses
                oldest = min(self._by_client, key=lambda k: self._by_client[k].last)
                del self._by_client[oldest]
        log.warning(
            "wrong admin password from %s (%d failure(s)%s)",
            client,
            f.count,
            f", locked out for {self.lockout_s} s" if f.locked_until > now else "",
        )
        return False

    def _wait(self, f: _Failures, now: float) -> int:
        if f.locked_until > now:
            return int(f.locked_until - now) + 1
        if f.count >= THROTTLE_FROM:
            delay = min(THROTTLE_MAX_S, 2 ** (f.count - THROTTLE_FROM))
            left = f.last + delay - now
            return int(left) + 1 if left > 0 else 0
        return 0


def safe_upload_name(name: str) -> str:
    """The file name to store an upload under, or InputError: never a path, never hidden, known type."""
    raw = unicodedata.normalize("NFC", name or "")
    bad = (
        not raw.strip()
        or "/" in raw
        or "\\" in raw
        or "\x00" in raw
        or raw.startswith((".", "~", "-"))
        or ".." in raw
        or any(unicodedata.category(ch).startswith("C") for ch in raw)
        or len(raw) > MAX_NAME_CHARS
        or not _NAME_OK.match(raw)
    )
    if bad:
        raise InputError(
            f"文件名不合法：{raw[:60]!r}。只能使用文字、数字、空格和 . - _ ( )，不能含路径 "
            f"(invalid file name {raw[:60]!r}: use letters, digits, spaces and . - _ ( ) only, no paths)"
        )
    suffix = Path(raw).suffix.lower()
    if suffix not in SUPPORTED:
        raise InputError(
            f"{raw}: 不支持的文件类型，支持 {'、'.join(SUPPORTED)} (unsupported file type; supported: {', '.join(SUPPORTED)})"
        )
    return raw


@dataclass
class Job:
    id: int
    kind: str  # upload | delete | reindex
    label: str
    state: str = "queued"  # queued | running | done | failed
    phase: str = ""
    done: int = 0
    total: int = 0
    message: str = ""
    created: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "active": self.active}


class Admin:
    """The knowledge-base operations behind the admin tab and the admin API."""

    def __init__(
        self,
        settings: Settings,
        pipeline_provider: Callable[[], Pipeline],
        docs_dirs: Iterable[Path] | None = None,
        max_queued: int = 20,
        fill_vectors_at_start: bool = True,
    ) -> None:
        self.settings = settings
        self.uploads = Path(settings.data_dir) / "uploads"
        self.docs_dirs = list(docs_dirs) if docs_dirs is not None else [Path(settings.data_dir) / "docs"]
        self._provider = pipeline_provider
        self._fallback_embedder: Embedder | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-admin")
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._max_queued = max_queued
        self._guard = PasswordGuard(settings.admin_password, settings.admin_max_failures, settings.admin_lockout_s)
        self.filler = VectorFiller(settings, self._reload)
        if fill_vectors_at_start:
            self.filler.kick()  # vectors left pending by a restart, a kill or `rag ingest --no-embed`

    # -- access -----------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return bool(self.settings.admin_password)

    @property
    def disabled_reason(self) -> str:
        return "管理功能未启用：请设置环境变量 RAG_ADMIN_PASSWORD 后重启 (admin is disabled: set RAG_ADMIN_PASSWORD and restart)"

    def check_password(self, password: str | None, client: str = "unknown") -> None:
        """AdminAuthError if wrong, AdminLockedError (429) while `client` is throttled or locked out."""
        if not self.settings.admin_password:
            raise AdminDisabledError(self.disabled_reason)
        if not password:  # no header at all is not a guess: refused, but not counted
            raise AdminAuthError("需要管理密码 (admin password required)")
        if not self._guard.check(password, client):
            raise AdminAuthError("管理密码错误 (wrong admin password)")

    # -- documents --------------------------------------------------------------------------

    def vector_status(self) -> dict[str, Any]:
        """Chunks of the served index, how many still wait for vectors, and the fill's progress."""
        try:
            index = self._provider().index
        except IndexMissingError:
            return {"chunks": 0, "embedded": 0, "pending": 0}
        out = vector_status(index.root, index.gen, len(index.chunks))
        out["filling"] = self.filler.running
        return out

    def documents(self) -> list[dict[str, Any]]:
        """Indexed documents for display: no server paths, plus whether it came from an upload
        and how many of its chunks still wait for vectors (`pending_vectors`)."""
        try:
            pipe = self._provider()
            docs = pipe.documents()
            index = pipe.index
        except IndexMissingError:
            return []
        waiting: dict[str, int] = {}
        for c in index.chunks if index.pending else ():
            if c.id in index.pending:
                waiting[c.doc_id] = waiting.get(c.doc_id, 0) + 1
        out = []
        for d in sorted(docs, key=lambda d: (d.get("district") or "", d.get("title") or "")):
            out.append(
                {
                    "doc_id": d.get("doc_id", ""),
                    "title": d.get("title", ""),
                    "district": d.get("district") or None,
                    "chunks": d.get("chunks", 0),
                    "source": d.get("source", ""),
                    "ingested_at": d.get("ingested_at", ""),
                    "kind": d.get("kind", ""),
                    "doc_number": d.get("doc_number") or None,
                    "uploaded": self._is_upload(d.get("path", "")),
                    "pending_vectors": waiting.get(d.get("doc_id", ""), 0),
                }
            )
        return out

    def _is_upload(self, path: str) -> bool:
        return bool(path) and Path(path).resolve().parent == self.uploads.resolve()

    def save_upload(self, name: str, data: bytes | BinaryIO) -> Path:
        """Store an upload under data_dir/uploads (replacing one of the same name); checks name and size."""
        safe = safe_upload_name(name)
        limit = self.settings.max_upload_mb * 1024 * 1024
        self.uploads.mkdir(parents=True, exist_ok=True)
        target = self.uploads / safe
        # Defence in depth: the resolved target must sit directly in the uploads folder.
        if target.resolve().parent != self.uploads.resolve():
            raise InputError(f"文件名不合法 (invalid file name {name!r})")
        tmp = self.uploads / f".upload-{os.getpid()}-{time.monotonic_ns()}"
        size = 0
        try:
            with open(tmp, "wb") as f:
                for chunk in _chunks(data):
                    size += len(chunk)
                    if size > limit:
                        raise InputError(
                            f"{safe}: 文件过大，上限 {self.settings.max_upload_mb} MB "
                            f"(file too large: the limit is {self.settings.max_upload_mb} MB)"
                        )
                    f.write(chunk)
            if size == 0:
                raise InputError(f"{safe}: 文件为空 (empty file)")
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    # -- jobs -------------------------------------------------------------------------------

    def submit_ingest(self, paths: list[Path], label: str = "") -> Job:
        """Index uploaded files; a file that fails to load is removed again so re-index stays clean."""
        return self._submit(
            "upload", label or "、".join(p.name for p in paths), lambda job: self._run_ingest(job, paths)
        )

    def submit_delete(self, doc_id: str) -> Job:
        doc = next((d for d in self._raw_documents() if d.get("doc_id") == doc_id), None)
        if doc is None:
            raise InputError(f"没有这份文件：{doc_id} (no indexed document with id {doc_id!r})")
        return self._submit("delete", doc.get("title") or doc_id, lambda job: self._run_delete(job, doc))

    def submit_reindex(self) -> Job:
        return self._submit("reindex", "重新索引", self._run_reindex)

    def job(self, job_id: int) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self, limit: int = 10) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.id, reverse=True)[:limit]

    def busy(self) -> bool:
        with self._lock:
            return any(j.active for j in self._jobs.values())

    def wait(self, job_id: int, timeout: float = 300.0) -> Job:
        """Block until a job finishes (tests, scripts)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job is None or not job.active or time.monotonic() > deadline:
                if job is None:
                    raise InputError(f"没有这个任务 (no job {job_id})")
                return job
            time.sleep(0.1)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.filler.stop()

    def _reload(self) -> None:
        try:
            self._provider().reload_if_changed()
        except IndexMissingError:
            pass

    def _submit(self, kind: str, label: str, work: Callable[[Job], str]) -> Job:
        with self._lock:
            if sum(1 for j in self._jobs.values() if j.active) >= self._max_queued:
                raise BusyError("排队任务过多，请稍后再试 (too many queued jobs; try again later)")
            job = Job(next(self._ids), kind, label)
            self._jobs[job.id] = job
            for old in sorted(self._jobs)[:-50]:  # keep the recent history only
                if not self._jobs[old].active:
                    del self._jobs[old]
        self._executor.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Callable[[Job], str]) -> None:
        job.state, job.phase = "running", "准备中"
        try:
            job.message = work(job)
            job.state = "done"
        except RagError as e:
            job.state, job.message = "failed", str(e)
        except Exception as e:
            log.exception("admin job %s failed", job.id)
            job.state, job.message = "failed", f"内部错误 (internal error: {type(e).__name__}: {e})"
        finally:
            job.finished = time.time()

    def _raw_documents(self) -> list[dict[str, Any]]:
        try:
            return self._provider().documents()
        except IndexMissingError:
            return []

    def _embedder(self) -> Embedder:
        try:
            return self._provider().embedder
        except IndexMissingError:  # first ingest into an empty knowledge base
            if self._fallback_embedder is None:
                self._fallback_embedder = make_embedder(self.settings)
            return self._fallback_embedder

    def _ingest(self, job: Job, paths: list[Path], prune: bool = False, remove: tuple[str, ...] = ()) -> IngestReport:
        def progress(total: int, desc: str) -> Callable[[int], None]:
            job.phase, job.done, job.total = "向量化 embedding" if desc == "embedding" else desc, 0, total

            def tick(n: int) -> None:
                job.done = min(job.total, job.done + n)

            return tick

        job.phase = "读取文件 loading"
        report = ingest(
            paths, self.settings, self._embedder(), prune=prune, remove_doc_ids=remove, progress=progress, embed=False
        )
        job.phase = "载入新索引 reloading"
        self._reload()
        job.phase = "完成"
        if report.pending:
            self.filler.kick()  # searchable by BM25 now; vectors follow in the background
        return report

    def _run_ingest(self, job: Job, paths: list[Path]) -> str:
        report = self._ingest(job, paths)
        for name, _reason in report.failed:
            bad = self.uploads / name
            if self._is_upload(str(bad)):
                bad.unlink(missing_ok=True)
        if report.failed and not (report.added or report.replaced or report.unchanged):
            raise InputError("；".join(reason for _, reason in report.failed))
        return summarize(report)

    def _run_delete(self, job: Job, doc: dict[str, Any]) -> str:
        report = self._ingest(job, [], remove=(doc["doc_id"],))
        path = doc.get("path", "")
        if self._is_upload(path):
            Path(path).unlink(missing_ok=True)
            return summarize(report)
        return (
            summarize(report)
            + "（原文件不在上传目录，重新索引会再次收录 / the file is outside uploads: re-index adds it again）"
        )

    def _run_reindex(self, job: Job) -> str:
        folders = [d for d in [*self.docs_dirs, self.uploads] if d.is_dir()]
        # Files indexed from elsewhere (e.g. `rag ingest some/dir`) are re-read too, if still there.
        known = [Path(d["path"]) for d in self._raw_documents() if d.get("path") and Path(d["path"]).is_file()]
        return summarize(self._ingest(job, folders + known, prune=True))


class VectorFiller:
    """One background thread that fills pending vectors (rag.ingest.fill) and reloads the served
    index after each publish. `kick()` starts it, or makes a running one look again when done.
    It embeds with its own embedder instance, so questions never wait behind an embedding batch."""

    def __init__(self, settings: Settings, on_publish: Callable[[], None], publish_every_s: float = 30.0) -> None:
        self.settings = settings
        self._on_publish = on_publish
        self.publish_every_s = publish_every_s
        self._embedder: Embedder | None = None
        self._thread: threading.Thread | None = None
        self._again = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.last: FillReport | None = None
        self.error: str | None = None

    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def kick(self) -> None:
        with self._lock:
            self._again.set()
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name="rag-vector-fill", daemon=True)
                self._thread.start()

    def wait(self, timeout: float = 600.0) -> FillReport | None:
        """Block until the fill is idle (tests, scripts); its last report."""
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        return self.last

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._lock:  # a kick either sees this thread alive or a cleared slot, never neither
                if not self._again.is_set() or self._stop.is_set():
                    self._thread = None
                    return
                self._again.clear()
            try:
                if vector_status(Path(self.settings.index_dir)).get("pending", 0) == 0:
                    continue
                if self._embedder is None:
                    self._embedder = make_embedder(self.settings)
                self.last = fill_vectors(
                    self.settings,
                    self._embedder,
                    stop=self._stop,
                    on_publish=lambda _name: self._on_publish(),
                    publish_every_s=self.publish_every_s,
                )
                self.error = None
            except (OSError, RagError) as e:  # no index yet, or the embedder is down: retried on the next kick
                self.error = str(e)
                log.warning("vector fill stopped: %s", e)
            except Exception as e:
                self.error = f"{type(e).__name__}: {e}"
                log.exception("vector fill failed")


def _chunks(data: bytes | BinaryIO) -> Iterable[bytes]:
    if isinstance(data, bytes | bytearray):
        yield bytes(data)
        return
    while chunk := data.read(_CHUNK):
        yield chunk


def summarize(r: IngestReport) -> str:
    """A one-line bilingual summary of an ingest."""
    line = (
        f"新增 {len(r.added)}，更新 {len(r.replaced)}，未变 {len(r.unchanged)}，删除 {len(r.removed)}，失败 {len(r.failed)}；"
        f"索引共 {r.chunks} 段，用时 {r.seconds:.1f} 秒 (added {len(r.added)}, replaced {len(r.replaced)}, "
        f"unchanged {len(r.unchanged)}, removed {len(r.removed)}, failed {len(r.failed)}; {r.chunks} chunks)"
    )
    if r.failed:
        line += " " + "；".join(reason for _, reason in r.failed)
    return line
