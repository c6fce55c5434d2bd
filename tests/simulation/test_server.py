"""backend/simulation/server.py without a working server: what a failed start says (the tests that start a real
one are tests/test_server.py and tests/test_serving_processes.py)."""
import socket

import pytest

from backend.simulation.server import ServerError, ServerProcess, free_port


def test_free_port_can_be_bound():
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))


def test_a_server_that_exits_at_start_says_so_and_where_its_log_is(tmp_path):
    log = tmp_path / "server.log"
    # a database without the schema: serve refuses to start (it asks for `upnext migrate`)
    server = ServerProcess(f"sqlite:///{tmp_path / 'empty.db'}", log_path=log, data_dir=tmp_path / "var")
    with pytest.raises(ServerError, match=f"the server exited with 1 \\(log: {log}\\)"):
        server.start(timeout=60)
    assert "upnext migrate" in log.read_text()
    server.stop()          # nothing left to stop: no error
