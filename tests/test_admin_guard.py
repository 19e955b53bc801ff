"""Admin password guessing: per-client throttling, lockout (429 + Retry-After), logging and the
same guard on the Gradio admin functions, against a real server on 127.0.0.1."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # app.py sits beside the installed `rag` package

from app import build_app, running
from rag.core.settings import Settings
from rag.index.embed import Embedder
from rag.serve.admin import Admin, AdminLockedError, PasswordGuard
from rag.serve.api import LivePipeline

PASSWORD = "s3cret-pass"


def test_guard_throttles_then_locks_out_per_client() -> None:
    g = PasswordGuard(PASSWORD, max_failures=6, lockout_s=600)
    assert [g.check("x", "a", now=t) for t in (0.0, 0.1, 0.2)] == [False] * 3  # THROTTLE_FROM tries back to back
    with pytest.raises(AdminLockedError) as e:
        g.check(PASSWORD, "a", now=0.3)  # even the right password must wait: guessing gains nothing
    assert e.value.retry_after == 1 and "retry in" in str(e.value)
    assert g.check(PASSWORD, "b", now=0.3)  # other clients are not affected
    assert not g.check("x", "a", now=1.3)  # 4th failure after the 1 s wait
    with pytest.raises(AdminLockedError):
        g.check("x", "a", now=2.5)  # now 2 s
    assert not g.check("x", "a", now=3.4)  # 5th
    assert not g.check("x", "a", now=7.5)  # 6th: locked out for 600 s
    with pytest.raises(AdminLockedError) as e:
        g.check(PASSWORD, "a", now=300.0)
    assert e.value.retry_after == 308 and "locked out" in str(e.value) and "已锁定" in str(e.value)
    assert g.check(PASSWORD, "a", now=608.0)  # after the lockout the right password works …
    assert not g.check("x", "a", now=608.1)  # … and resets the count: one wrong try is a plain failure


@pytest.fixture(scope="module")
def url(
    private_plans: Callable[..., Settings], embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    settings = private_plans(
        tmp_path_factory.mktemp("guard"),
        admin_password=PASSWORD,
        admin_max_failures=3,  # locked out at the 3rd: the Gradio check below cannot race the throttle
        admin_lockout_s=120,
    )
    provider = LivePipeline(settings, embedder)
    admin = Admin(settings, provider)
    with running(build_app(settings, provider, admin=admin)) as u:
        yield u
    admin.shutdown()


def test_wrong_passwords_lock_out_the_api_and_the_gradio_admin(url: str, caplog: pytest.LogCaptureFixture) -> None:
    from gradio_client import Client

    caplog.set_level(logging.WARNING, logger="rag.serve.admin")
    with httpx.Client(base_url=url, timeout=30) as http:
        codes = [
            http.post("/api/admin/reindex", headers={"X-Admin-Password": f"guess{i}"}).status_code for i in range(20)
        ]
        # 3 tries back to back, then 429 while throttled; no burst of guesses is ever checked.
        assert codes[:3] == [401, 401, 401] and set(codes[3:]) == {429}, codes
        r = http.post("/api/admin/reindex", headers={"X-Admin-Password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert "请" in r.json()["detail"] and "retry in" in r.json()["detail"]
    failures = [rec for rec in caplog.records if "wrong admin password" in rec.getMessage()]
    assert len(failures) == 3 and all("127.0.0.1" in rec.getMessage() for rec in failures)
    # The Gradio admin functions use the same guard for the same client.
    out, _timer = Client(url, verbose=False).predict(PASSWORD, api_name="/admin_reindex")
    assert "retry in" in out and "管理密码错误次数过多" in out
