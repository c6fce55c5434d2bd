"""`upnext serve` behind a reverse proxy: with UPNEXT_TRUSTED_PROXIES naming it, the admin login throttle counts
each client (X-Forwarded-For) on its own; without it, those headers are ignored and every request is the proxy's."""
import re

import httpx
import pytest

from backend.access.login_throttle import PER_CLIENT
from backend.simulation.server import ServerProcess

PASSWORD = "a long admin password"


def _failed_logins(client: httpx.Client, forwarded_for: str, times: int) -> list[int]:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/admin/login").text).group(1)
    return [client.post("/admin/login", data={"csrf": token, "password": "wrong", "next": "/admin/"},
                        headers={"X-Forwarded-For": forwarded_for}).status_code for _ in range(times)]


@pytest.mark.parametrize("trusted", ["127.0.0.1", ""])
def test_the_login_throttle_counts_the_forwarded_client_only_from_a_trusted_proxy(sqlite_url, tmp_path, trusted):
    env = {"UPNEXT_ADMIN_PASSWORD": PASSWORD, "UPNEXT_TRUSTED_PROXIES": trusted}
    with ServerProcess(sqlite_url, env=env, data_dir=tmp_path / "var") as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        assert _failed_logins(client, "203.0.113.5", PER_CLIENT) == [401] * PER_CLIENT
        assert _failed_logins(client, "203.0.113.5", 1) == [429]
        other_client = _failed_logins(client, "203.0.113.9", 1)
    # behind a trusted proxy the second client has its own count; otherwise both are the proxy (127.0.0.1)
    assert other_client == ([401] if trusted else [429])
