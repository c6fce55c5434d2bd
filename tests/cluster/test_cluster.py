"""Several hosts, one PostgreSQL (issue 16, part 6): three `upnext serve` processes standing for three hosts (each
its own data folder and model cache, nothing shared but the database), nginx in front with the repository's
deploy/nginx/upnext.conf, and one `upnext worker`.

- a model trained by the worker becomes live on all three hosts within 10 s;
- the same session and history get the same list from every host;
- an admin login made through one host (via nginx) is valid on the others;
- under steady load through nginx, one host is killed with kill -9 and restarted: no recommendation fails and
  every acknowledged event is stored; a scheduled retraining due meanwhile runs exactly once.

It prints its figures (run with -s to see them). About a minute: part of `make bench`, skipped by `make test`
unless UPNEXT_CLUSTER_TEST=1 (nginx must be installed: apt-get install nginx-light)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from backend.clock import now_ms
from backend.retraining.scheduler import HOUR_MS, save_schedule
from backend.retraining.supervisor import RunSupervisor
from backend.settings import REPO_ROOT, Settings
from backend.simulation.server import ServerProcess, free_port
from backend.store import runs
from backend.store.db import make_engine, migrate
from backend.store.sites import create_site
from backend.store.trained_models import promote
from tests.support.training import TINY
from tests.support.visits import item_id, seed_visits

pytestmark = [pytest.mark.slow, pytest.mark.postgres,
              pytest.mark.skipif(os.environ.get("UPNEXT_CLUSTER_TEST") != "1",
                                 reason="about a minute: `make bench` runs it (UPNEXT_CLUSTER_TEST=1)")]
PASSWORD = "cluster-admin-password-1"
HOSTS = 3
LOAD_S = 16.0
KILL_AT_S, RESTART_AT_S = 4.0, 6.0


def start_nginx(tmp: Path, hosts: list[ServerProcess]) -> tuple[subprocess.Popen, str]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    port = free_port()
    conf = (REPO_ROOT / "deploy" / "nginx" / "upnext.conf").read_text()
    assert "listen 80;" in conf
    (tmp / "upnext.conf").write_text(conf.replace("listen 80;", f"listen 127.0.0.1:{port};"))
    (tmp / "upnext-hosts.conf").write_text("".join(f"server 127.0.0.1:{h.port} max_fails=1 fail_timeout=5s;\n"
                                                   for h in hosts))
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / d).mkdir()
    (tmp / "nginx.conf").write_text(f"""
daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/nginx-error.log warn;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    include {tmp}/upnext.conf;
}}
""")
    with open(tmp / "nginx.out", "wb") as out:
        proc = subprocess.Popen([nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
                                stdout=subprocess.DEVNULL, stderr=out)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, (tmp / "nginx.out").read_text() + (tmp / "nginx-error.log").read_text()
        time.sleep(0.1)
    raise AssertionError("nginx did not answer")


def ask(url: str, key: str, session: str, history: str, client=httpx) -> httpx.Response:
    return client.get(url + "/v1/recommendations", params={"key": key, "placement": "product-page",
                                                           "session": session, "history": history, "n": 10},
                      timeout=10)


def test_three_hosts_one_database_nginx_and_a_worker(postgres_server, tmp_path):
    url = postgres_server.create_database("upnext_cluster")
    migrate(url)
    engine = make_engine(url)
    site = create_site(engine, "shop", [])
    seed_visits(engine, site.site_id, sessions=300, days=3)
    env = {"UPNEXT_TRAIN_ON": "worker", "UPNEXT_TRUSTED_PROXIES": "127.0.0.1", "UPNEXT_ADMIN_PASSWORD": PASSWORD,
           "UPNEXT_LOG_LEVEL": "WARNING"}
    hosts = [ServerProcess(url, data_dir=tmp_path / f"host{i}", env=env, log_path=tmp_path / f"host{i}.log")
             for i in range(HOSTS)]
    worker = nginx = None
    try:
        for h in hosts:
            h.start(timeout=120)
        nginx, front = start_nginx(tmp_path, hosts)
        with open(tmp_path / "worker.log", "wb") as log:   # the child keeps its own descriptor
            worker = subprocess.Popen([sys.executable, "-m", "backend", "worker"], cwd=REPO_ROOT,
                                      env={**os.environ, "UPNEXT_DATABASE_URL": url, "UPNEXT_DATA_DIR":
                                           str(tmp_path / "worker"), "UPNEXT_TRAIN_ON": "worker",
                                           "UPNEXT_TRAIN_DEVICE": "cpu", "UPNEXT_LOG_LEVEL": "WARNING"},
                                      stdout=log, stderr=subprocess.STDOUT)
        key = site.publishable_key

        assert all(ask(h.url, key, "s" * 22, item_id(1)).json()["fallback"] for h in hosts)   # no model yet
        # 1. a run queued from a server's side is trained by the worker; once promoted, every host serves it
        queued_by = Settings.from_env({}, database_url=url, data_dir=str(tmp_path / "host0"), train_on="worker")
        run_id = RunSupervisor(engine, queued_by).start_run(site.site_id, TINY)
        deadline = time.monotonic() + 180
        while (run := runs.get_run(engine, run_id)).active:
            assert time.monotonic() < deadline and worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
        assert run.status == "succeeded", run.error
        promoted = time.monotonic()
        promote(engine, site.site_id, run.model_id)
        reached = {}
        while len(reached) < HOSTS:
            for i, h in enumerate(hosts):
                if i not in reached and ask(h.url, key, "s" * 22, item_id(1)).json()["fallback"] is None:
                    reached[i] = time.monotonic() - promoted
            assert time.monotonic() - promoted < 30, reached
            time.sleep(0.05)
        print(f"\nnew model live on all {HOSTS} hosts after {max(reached.values()):.2f} s "
              f"(per host: {', '.join(f'{t:.2f}' for t in reached.values())} s)")
        assert max(reached.values()) < 10
        for i in range(HOSTS):            # each host fetched it into its own cache
            assert (tmp_path / f"host{i}" / "models").is_dir()

        # 2. the same session and history: the same list everywhere
        history = ",".join(item_id(i) for i in (3, 4, 5))
        lists = [[it["id"] for it in ask(h.url, key, "samesession-0000000000", history).json()["items"]]
                 for h in hosts]
        assert lists[0] and all(lst == lists[0] for lst in lists), lists

        # 3. an admin login through nginx works on every host
        with httpx.Client(base_url=front) as browser:
            page = browser.get("/admin/login").text
            token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            r = browser.post("/admin/login", data={"csrf": token, "password": PASSWORD, "next": "/admin/"})
            assert r.status_code == 303, r.text
            cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        for h in hosts:
            r = httpx.get(h.url + "/admin/sites", headers={"Cookie": cookie})
            assert r.status_code == 200 and "login" not in str(r.url), (h.url, r.status_code)

        # 4. a scheduled retraining due now, and steady load through nginx with a host killed and restarted
        save_schedule(engine, site.site_id, enabled=True, every_hours=1, params=TINY, now=now_ms() - 2 * HOUR_MS)
        counts = {"rec_ok": 0, "rec_failed": 0, "ev_acked": 0, "ev_refused": 0}
        acked, failures, lock, stop = [], [], threading.Lock(), threading.Event()

        def recommend(n):
            with httpx.Client(base_url=front, timeout=10) as c:
                k = 0
                while not stop.is_set():
                    k += 1
                    try:
                        r = ask("", key, f"load-rec-{n}-{k % 50:06d}-xxxxxxxx", history, client=c)
                        ok = r.status_code == 200
                    except httpx.HTTPError as exc:
                        ok, r = False, exc
                    with lock:
                        counts["rec_ok" if ok else "rec_failed"] += 1
                        if not ok:
                            failures.append(str(getattr(r, "status_code", r)))

        def post_events(n):
            with httpx.Client(base_url=front, timeout=10) as c:
                k = 0
                while not stop.is_set():
                    k += 1
                    session = f"load-ev-{n}-{k:08d}-xxxxxxxx"
                    try:
                        r = c.post("/v1/events", json={"key": key, "session": session,
                                                       "events": [{"type": "view", "item": item_id(k % 40)}]})
                        ok = r.status_code == 202
                    except httpx.HTTPError:
                        ok = False
                    with lock:
                        counts["ev_acked" if ok else "ev_refused"] += 1
                        if ok:
                            acked.append(session)

        threads = [threading.Thread(target=recommend, args=(n,)) for n in range(3)] + \
                  [threading.Thread(target=post_events, args=(n,)) for n in range(2)]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(KILL_AT_S)
        hosts[1].kill()                                        # kill -9: no shutdown code runs
        killed = time.monotonic()
        time.sleep(RESTART_AT_S - KILL_AT_S)
        hosts[1].start(timeout=120)
        back = time.monotonic()
        time.sleep(max(0.0, LOAD_S - (time.monotonic() - started)))
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        with engine.connect() as conn:
            stored = set(conn.execute(text("SELECT session FROM events WHERE site_id = :s AND session LIKE "
                                           "'load-ev-%'"), {"s": site.site_id}).scalars())
        print(f"load {elapsed:.1f} s through nginx, host 1 killed at {killed - started:.1f} s and serving again "
              f"after {back - killed:.1f} s: {counts['rec_ok']} recommendations ({counts['rec_failed']} failed), "
              f"{counts['ev_acked']} events acknowledged ({counts['ev_refused']} refused), "
              f"{len(stored & set(acked))} of them stored")
        assert counts["rec_failed"] == 0, failures[:5]
        assert counts["rec_ok"] > 0 and counts["ev_acked"] > 0
        assert set(acked) <= stored                                      # acknowledged = stored

        deadline = time.monotonic() + 180
        while not (scheduled := [r for r in runs.list_runs(engine, site.site_id) if r.trigger == "schedule"]) \
                or scheduled[0].active:
            assert time.monotonic() < deadline, scheduled
            time.sleep(0.5)
        time.sleep(2)
        scheduled = [r for r in runs.list_runs(engine, site.site_id) if r.trigger == "schedule"]
        print(f"scheduled retraining: {len(scheduled)} run ({scheduled[0].status}, claimed by {scheduled[0].host})")
        assert len(scheduled) == 1 and scheduled[0].status == "succeeded", scheduled[0].error
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        for h in hosts:
            h.stop()
        engine.dispose()
