"""Packaging beyond pyproject.toml: a wheel carries what Upnext reads from the checkout when run from one
(``static/``, the built widget included, and ``migrations/``) as ``backend/_bundled/`` (found by
backend/settings.resource_dir). Build the widget first (``python widget/build.py``): a wheel without it is refused."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
RESOURCES = ("static", "migrations")


class BuildWithResources(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return                     # an editable install reads them from the checkout
        if not (HERE / "static" / "w.js").is_file():
            raise SystemExit("static/w.js is missing: run `python widget/build.py` before building the wheel")
        for name in RESOURCES:
            shutil.copytree(HERE / name, Path(self.build_lib) / "backend" / "_bundled" / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithResources})
