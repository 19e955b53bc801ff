"""Limits on Gradio's own upload route, `POST /gradio_api/upload`, as a small ASGI middleware.

Gradio lets anyone upload to its temp folder before any handler (and so before the admin
password) runs, and answers with the file's absolute server path. Gradio's own options cover a
part of it (`max_file_size` in `mount_gradio_app`: the per-file limit, answered 413; its temp
folder is `GRADIO_TEMP_DIR`). This middleware adds the rest:

- per request: a declared Content-Length (411 without), at most `max_request_bytes` (413) and
  `max_files_per_request` files (400);
- only the file types the knowledge-base tab takes (rag.ingest.load.SUPPORTED; 415) — the chat
  page needs no uploads at all;
- per client over a sliding window: at most `max_files_per_window` files and
  `max_bytes_per_window` bytes (429 with Retry-After);
- a bounded, cleaned folder: entries older than `max_age_s` are removed before each upload, and
  an upload that would grow the folder past `folder_max_bytes` is refused (503 with Retry-After);
- no server path: the answer names each file as `zc-upload/<hash>/<name>`, and the middleware maps
  that name back to the real path where Gradio's clients send it (the `path` of a FileData in a
  JSON request body, and `GET /gradio_api/file=…`).

Every refusal is plain text in Chinese and English, as Gradio's own upload errors are plain text.
The middleware runs on the event loop; its per-client counters need no lock. `rag` never imports
gradio: this speaks plain ASGI.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rag.core.settings import Settings
from rag.ingest.load import SUPPORTED

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOAD_ROUTE = "/gradio_api/upload"
FILE_ROUTE = "/gradio_api/file="
API_PREFIX = "/gradio_api/"
TOKEN = "zc-upload/"
# What Gradio names an upload: <folder>/<sha hex>/<file name>.
_TOKEN_RE = re.compile(r"zc-upload/([0-9a-f]{16,128})/([^/\\\x00]+)")
_GRADIO_ENTRY = re.compile(r"[0-9a-f]{16,128}|tmp\w+")  # what the cleaner may remove
MAX_JSON_BODY = 1024 * 1024  # request bodies searched for upload names (Gradio's event payloads are small)
MB = 1024 * 1024


def upload_folder() -> Path:
    """Gradio's upload folder: GRADIO_TEMP_DIR when the operator set it, else a folder of our own
    (<tmp>/zhengce-gradio, not Gradio's shared /tmp/gradio), exported so Gradio uses the same.
    Call before the Blocks are built: Gradio reads the variable then."""
    folder = os.environ.get("GRADIO_TEMP_DIR") or str(Path(tempfile.gettempdir()) / "zhengce-gradio")
    os.environ["GRADIO_TEMP_DIR"] = folder
    path = Path(folder).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int
    max_files_per_request: int = 10
    max_request_bytes: int = 0  # 0: 4 files' worth
    window_s: float = 600.0
    max_files_per_window: int = 20
    max_bytes_per_window: int = 0  # 0: 4 files' worth
    folder_max_bytes: int = 0  # 0: 10 files' worth
    max_age_s: float = 3600.0
    suffixes: tuple[str, ...] = SUPPORTED

    def __post_init__(self) -> None:
        for name, files in (("max_request_bytes", 4), ("max_bytes_per_window", 4), ("folder_max_bytes", 10)):
            if not getattr(self, name):
                object.__setattr__(self, name, files * self.max_file_bytes + MB)  # + multipart overhead

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> UploadLimits:
        return cls(max_file_bytes=settings.max_upload_mb * MB, **overrides)


class UploadRefused(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def _mb(n: int) -> str:
    return f"{n / MB:.0f}"


@dataclass
class _Use:
    at: float
    files: int
    size: int


class UploadGuard:
    """The policy: per-client budgets, the folder's bound and cleaning, the public names."""

    def __init__(self, folder: Path, limits: UploadLimits) -> None:
        self.folder = Path(folder).resolve()
        self.limits = limits
        self._uses: dict[str, deque[_Use]] = {}
        self.refused = 0

    # -- names -------------------------------------------------------------------------------

    def public_name(self, path: str) -> str:
        """`zc-upload/<hash>/<name>` for a file Gradio saved in the folder."""
        rel = Path(path).resolve().relative_to(self.folder)
        return TOKEN + rel.as_posix()

    def real_path(self, name: str) -> str | None:
        """The server path behind a public name, or None if `name` is not one (or escapes)."""
        m = _TOKEN_RE.fullmatch(name)
        if not m or m.group(2) in (".", ".."):
            return None
        return str(self.folder / m.group(1) / m.group(2))

    def resolve(self, value: Any) -> Any:
        """A JSON value with every FileData path (and URL) given as a public name made real."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        out = {k: self.resolve(v) for k, v in value.items()}
        path = out.get("path")
        if isinstance(path, str) and (real := self.real_path(path)) is not None:
            out["path"] = real
            url = out.get("url")
            if isinstance(url, str) and url.endswith(FILE_ROUTE + path):
                out["url"] = url[: -len(path)] + real
        return out

    def scrub(self, text: str) -> str:
        """Text with the folder's server path replaced by the public prefix."""
        return text.replace(str(self.folder) + "/", TOKEN).replace(str(self.folder), TOKEN.rstrip("/"))

    # -- budgets -----------------------------------------------------------------------------

    def admit(self, client: str, length: int | None, now: float | None = None) -> None:
        """Refuse (UploadRefused) or reserve `length` bytes of the client's budget."""
        lim = self.limits
        now = time.monotonic() if now is None else now
        if length is None:
            raise UploadRefused(
                411, "上传请求需要注明长度 (Content-Length) (an upload must declare its Content-Length)"
            )
        if length > lim.max_request_bytes:
            raise UploadRefused(
                413,
                f"上传内容过大：单个文件不超过 {_mb(lim.max_file_bytes)} MB，一次共不超过 {_mb(lim.max_request_bytes)} MB "
                f"(upload too large: at most {_mb(lim.max_file_bytes)} MB per file and "
                f"{_mb(lim.max_request_bytes)} MB per request)",
            )
        uses = self._uses.setdefault(client, deque())
        while uses and now - uses[0].at > lim.window_s:
            uses.popleft()
        files = sum(u.files for u in uses)
        size = sum(u.size for u in uses)
        if files + 1 > lim.max_files_per_window or size + length > lim.max_bytes_per_window:
            wait = max(1, math.ceil(lim.window_s - (now - uses[0].at))) if uses else 1
            minutes = f"{lim.window_s / 60:g}"
            raise UploadRefused(
                429,
                f"上传过于频繁：每 {minutes} 分钟最多 {lim.max_files_per_window} 个文件、共 "
                f"{_mb(lim.max_bytes_per_window)} MB，请 {wait} 秒后再试 (too many uploads: at most "
                f"{lim.max_files_per_window} files and {_mb(lim.max_bytes_per_window)} MB per {minutes} min; "
                f"retry in {wait} s)",
                retry_after=wait,
            )
        held = self.clean(now_wall=time.time())
        if held + length > lim.folder_max_bytes:
            raise UploadRefused(
                503,
                "上传暂存区已满，请稍后再试 (the upload area is full; retry later)",
                retry_after=max(1, math.ceil(lim.max_age_s / 10)),
            )
        uses.append(_Use(now, 1, length))

    def reset(self) -> None:
        """Forget every client's budget."""
        self._uses.clear()

    def record(self, client: str, files: int) -> None:
        """The number of files the client's last admitted request stored."""
        uses = self._uses.get(client)
        if uses:
            uses[-1].files = max(1, files)

    def check_files(self, paths: list[str]) -> None:
        """Count and types of the files one request stored (they are removed when refused)."""
        lim = self.limits
        if len(paths) > lim.max_files_per_request:
            raise UploadRefused(
                400,
                f"一次最多上传 {lim.max_files_per_request} 个文件，本次 {len(paths)} 个 "
                f"(at most {lim.max_files_per_request} files per upload, got {len(paths)})",
            )
        for p in paths:
            suffix = Path(p).suffix.lower()
            if suffix not in lim.suffixes:
                raise UploadRefused(
                    415,
                    f"{Path(p).name}：不支持的文件类型 {suffix or '（无扩展名）'}，只接受 {' '.join(lim.suffixes)} "
                    f"(unsupported file type {suffix or '(none)'}; accepted: {' '.join(lim.suffixes)})",
                )

    def discard(self, paths: list[str]) -> None:
        for p in paths:
            path = Path(p).resolve()
            if path.parent.parent != self.folder:
                continue
            path.unlink(missing_ok=True)
            try:
                path.parent.rmdir()  # only if empty: another upload of the same content may share it
            except OSError:
                pass

    # -- the folder ----------------------------------------------------------------------------

    def clean(self, now_wall: float | None = None) -> int:
        """Remove Gradio's entries older than `max_age_s`; the bytes the folder still holds."""
        now_wall = time.time() if now_wall is None else now_wall
        held = 0
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return 0
        for e in entries:
            if not _GRADIO_ENTRY.fullmatch(e.name):
                continue
            size, newest = _measure(Path(e.path))
            if now_wall - newest > self.limits.max_age_s:
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    Path(e.path).unlink(missing_ok=True)
            else:
                held += size
        return held


def _measure(path: Path) -> tuple[int, float]:
    """(bytes, newest mtime) of a file or a folder's files."""
    try:
        if not path.is_dir():
            st = path.stat()
            return st.st_size, st.st_mtime
        size, newest = 0, path.stat().st_mtime
        for f in path.rglob("*"):
            st = f.lstat()
            size += st.st_size
            newest = max(newest, st.st_mtime)
        return size, newest
    except FileNotFoundError:
        return 0, 0.0


# -- the ASGI middleware ------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers") or ():
        if k.lower() == name:
            return bytes(v).decode("latin-1")
    return None


async def _text_response(send: Send, status: int, message: str, retry_after: int | None = None) -> None:
    body = message.encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class UploadMiddleware:
    """`app.add_middleware(UploadMiddleware, guard=UploadGuard(...))` on the app Gradio is mounted on."""

    def __init__(self, app: ASGIApp, guard: UploadGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        if path == UPLOAD_ROUTE and method == "POST":
            await self._upload(scope, receive, send)
        elif path.startswith(FILE_ROUTE + TOKEN) and method in ("GET", "HEAD"):
            real = self.guard.real_path(path[len(FILE_ROUTE) :])
            if real is None:
                await _text_response(send, 404, "没有这个文件 (no such file)")
                return
            new = FILE_ROUTE + real
            await self.app({**scope, "path": new, "raw_path": quote(new).encode()}, receive, send)
        elif method == "POST" and path.startswith(API_PREFIX):
            await self._resolve_body(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        guard = self.guard
        client = (scope.get("client") or ("unknown", 0))[0]
        declared = _header(scope, b"content-length")
        try:
            guard.admit(client, int(declared) if declared and declared.isdigit() else None)
        except UploadRefused as e:
            guard.refused += 1
            await _text_response(send, e.status, str(e), e.retry_after)
            return
        start: Message = {}
        body = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await self.app(scope, receive, capture)
        status = int(start.get("status", 500))
        if status == 413:  # Gradio's max_file_size: one file is too large
            mb = _mb(guard.limits.max_file_bytes)
            guard.refused += 1
            await _text_response(
                send, 413, f"文件过大：单个文件不超过 {mb} MB (file too large: at most {mb} MB per file)"
            )
            return
        if status != 200:
            await _text_response(send, status, guard.scrub(body.decode("utf-8", "replace")))
            return
        try:
            paths = [str(p) for p in json.loads(body)]
        except (ValueError, TypeError):
            await _text_response(send, 502, "上传结果无法识别 (unexpected upload result)")
            return
        guard.record(client, len(paths))
        try:
            guard.check_files(paths)
        except UploadRefused as e:
            guard.discard(paths)
            guard.refused += 1
            await _text_response(send, e.status, str(e), e.retry_after)
            return
        out = json.dumps([guard.public_name(p) for p in paths], ensure_ascii=False).encode("utf-8")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    async def _resolve_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A JSON request body with its public upload names made real again (Gradio's event calls)."""
        chunks: list[bytes] = []
        size, more = 0, True
        first: list[Message] = []
        while more and size <= MAX_JSON_BODY:
            message = await receive()
            if message["type"] != "http.request":
                first.append(message)
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        headers = list(scope.get("headers") or ())
        if not more and not first and TOKEN.encode() in body:
            try:
                body = json.dumps(self.guard.resolve(json.loads(body)), ensure_ascii=False).encode("utf-8")
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
            except ValueError:
                pass
        replay: deque[Message] = deque(first)
        replay.appendleft({"type": "http.request", "body": body, "more_body": more})

        async def receive_again() -> Message:
            return replay.popleft() if replay else await receive()

        await self.app({**scope, "headers": headers}, receive_again, send)
