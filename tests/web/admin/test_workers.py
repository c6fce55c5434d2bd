"""`upnext serve --workers 2`: an admin session and its CSRF token work whichever worker answers, and a setting
saved through one worker is applied by the other within seconds."""
import re
import time

import httpx
import pytest

from backend.simulation.server import ServerProcess
from backend.store.db import make_engine
from backend.store.sites import create_site
from tests.web.admin.conftest import PASSWORD, form_token

pytestmark = pytest.mark.slow


def _get(url, cookies, path):
    # a new connection per request, so the kernel spreads them over the workers
    return httpx.get(url + path, cookies=cookies, headers={"Connection": "close"}, follow_redirects=False)


def test_sessions_csrf_and_settings_span_worker_processes(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    site = create_site(engine, "shop", [])
    engine.dispose()
    with ServerProcess(sqlite_url, workers=2, data_dir=tmp_path / "var", log_path=tmp_path / "server.log",
                       env={"UPNEXT_ADMIN_PASSWORD": PASSWORD}) as server:
        token = form_token(_get(server.url, None, "/admin/login").text)
        r = httpx.post(server.url + "/admin/login", data={"csrf": token, "password": PASSWORD})
        assert r.status_code == 303
        cookies = {"upnext_admin": r.cookies["upnext_admin"]}

        pids = set()
        for _ in range(30):
            page = _get(server.url, cookies, f"/admin/sites/{site.site_id}/")
            assert page.status_code == 200
            pids.add(re.search(r"pid (\d+)", page.text).group(1))
            if len(pids) == 2:
                break
        assert len(pids) == 2, "the requests never reached the second worker"

        csrf = form_token(_get(server.url, cookies, "/admin/settings").text)
        r = httpx.post(server.url + "/admin/settings", cookies=cookies, headers={"Connection": "close"},
                       data={"csrf": csrf, "retention_days": "21", "state_mb": ""})
        assert r.status_code == 303
        applied, deadline = set(), time.monotonic() + 20
        while applied != pids and time.monotonic() < deadline:
            html = _get(server.url, cookies, "/admin/settings").text
            m = re.search(r"in use now: (\d+) \(this server process, pid (\d+)\)", html)
            if m.group(1) == "21":
                applied.add(m.group(2))
            time.sleep(0.1)
        assert applied == pids
