"""The wheel works outside a checkout (issue 16, part 3): built from the sources, installed into a fresh
virtualenv in a temporary folder, it migrates, creates a site, publishes a model, serves, answers a
recommendation, the widget and the admin pages, all without torch (serving never imports it).

The virtualenv gets the wheel itself (``--no-deps``) and, for its dependencies, this environment's site-packages
through a .pth file (no download); another .pth line makes ``import torch`` fail in it, as where torch is not
installed. Numba's JIT is off in it (NUMBA_DISABLE_JIT=1): compiling the kernels afresh in a new folder costs
40 s on this machine and tests nothing about packaging (the kernels are tested compiled everywhere else)."""
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from backend.settings import REPO_ROOT
from backend.simulation.server import ServerProcess
from tests.kernels.random_model import save_random_gru4rec

pytestmark = pytest.mark.slow
SOURCES = ("backend", "migrations", "static", "pyproject.toml", "setup.py", "README.md")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(upnext script, venv python) of a fresh virtualenv holding the freshly built wheel."""
    tmp = tmp_path_factory.mktemp("packaging")
    if not (REPO_ROOT / "static" / "w.js").exists():
        pytest.skip("static/w.js is not built: run widget/build.py")
    src = tmp / "src"
    for name in SOURCES:                  # a copy: the build writes build/ and *.egg-info beside its sources
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi",
                                                                             "*.nbc"))
        else:
            shutil.copy(path, src / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "dist", src])
    wheel = next((tmp / "dist").glob("upnext-*.whl"))
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", "-q", wheel])
    site = Path(subprocess.check_output([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        text=True).strip())
    (site / "zz_dependencies.pth").write_text(f"{sysconfig.get_path('purelib')}\n"
                                              "import sys; sys.modules['torch'] = None\n")
    return venv / "bin" / "upnext", py


def run(cmd, **kw):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kw)
    assert done.returncode == 0, f"{cmd}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_installed_wheel_runs_from_an_empty_folder_without_torch(installed, tmp_path):
    upnext, py = installed
    probe = subprocess.run([str(py), "-c", "import backend.settings as s; print(s.__file__); "
                                           "print(s.resource_dir('migrations')); import torch"],
                           capture_output=True, text=True, cwd=tmp_path)
    module, migrations = probe.stdout.split()[:2]
    assert str(py.parent.parent) in module and str(py.parent.parent) in migrations    # the wheel's, not the checkout's
    assert "ModuleNotFoundError" in probe.stderr or "ImportError" in probe.stderr       # torch: absent
    env = {"UPNEXT_DATA_DIR": str(tmp_path / "var"), "UPNEXT_LOG_LEVEL": "WARNING", "NUMBA_DISABLE_JIT": "1",
           "PATH": "/usr/bin:/bin"}
    run([upnext, "migrate"], cwd=tmp_path, env=env)
    out = run([upnext, "site", "create", "shop", "--origin", "https://shop.example"], cwd=tmp_path, env=env)
    keys = json.loads(out[:out.rindex("}") + 1])
    (tmp_path / "items.csv").write_text("id,title,url\n" + "".join(f"i{k},Item {k},/p/{k}\n" for k in range(40)))
    run([upnext, "import-items", tmp_path / "items.csv", "--site", "shop"], cwd=tmp_path, env=env)
    model = save_random_gru4rec(tmp_path / "trained", 40, [8], seed=3)
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["item_ids"] = [f"i{k}" for k in range(40)]
    (model / "manifest.json").write_text(json.dumps(manifest))
    run([upnext, "model", "publish", model, "--site", "shop"], cwd=tmp_path, env=env)
    url = f"sqlite:///{tmp_path / 'var' / 'upnext.db'}"
    with ServerProcess(url, data_dir=tmp_path / "var", program=[str(upnext)], cwd=tmp_path, env=env,
                       log_path=tmp_path / "serve.log") as server:
        r = httpx.get(server.url + "/v1/recommendations", headers={"Origin": "https://shop.example"},
                      params={"key": keys["publishable_key"], "placement": "product-page", "history": "i1,i2",
                              "n": 5})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["algorithm"] == "gru4rec_next" and body["fallback"] is None and len(body["items"]) == 5
        assert httpx.get(server.url + "/w.js").status_code == 200                       # the bundled widget
        assert httpx.get(server.url + "/admin/static/admin.js").status_code == 200      # bundled static files
        assert httpx.get(server.url + "/admin/login", follow_redirects=True).status_code == 200   # templates
    assert "torch" not in (tmp_path / "serve.log").read_text()
