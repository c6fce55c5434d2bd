"""`upnext serve`: the open-file limit is raised to fit the connection cap (past the limit, the kernel would reset
new clients instead of the server answering them 503). The limits themselves: tests/web/test_connections.py."""
import subprocess
import sys

from backend.settings import REPO_ROOT

CODE = """
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
from backend.commands.serve import fit_open_files
print(fit_open_files(min(hard, 1256)), resource.getrlimit(resource.RLIMIT_NOFILE)[0], min(hard, 1256))
print(fit_open_files(100), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def test_the_open_file_limit_is_raised_to_fit_the_connections_and_never_lowered():
    out = subprocess.run([sys.executable, "-c", CODE], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    raised, now, wanted = map(int, out.stdout.split("\n")[0].split())
    assert raised == now == wanted
    kept, now = map(int, out.stdout.split("\n")[1].split())
    assert kept == now == wanted
