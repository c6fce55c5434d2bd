"""Shared Playwright fixtures: one headless Debian Chromium per test session, a fresh context per test,
and a place for screenshots (tests/output/screenshots/). Tests skip with a reason when Chromium or
Playwright is missing."""
from __future__ import annotations

from pathlib import Path

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips these tests with the reason
    expect = None
else:
    # The machines that run these tests are small and shared: give slow moments room (no test asserts a timing).
    expect.set_options(timeout=15_000)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "output" / "screenshots"


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, shared by all the tests of the session."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (make install does, as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: make install")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    """A fresh browser context (cookies, storage, routes) for one test."""
    ctx = browser.new_context(viewport={"width": 1100, "height": 800}, locale="en-US")
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


@pytest.fixture
def screenshot():
    """``screenshot(page_or_locator, name)`` writes tests/output/screenshots/<name>.png and returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(target, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        target.screenshot(path=str(path))
        assert path.stat().st_size > 0
        return path

    return take



@pytest.fixture(scope="session")
def widget_js() -> bytes:
    """The widget built from widget/src now (not a possibly stale static/w.js)."""
    from fake_upnext import load_build_module

    return load_build_module().build().script


@pytest.fixture
def site(context, widget_js):
    """The fake shop + Upnext server of fake_upnext.py, routed in this test's context."""
    from fake_upnext import FakeUpnext

    return FakeUpnext(context, widget_js)


@pytest.fixture
def page(context):
    """A page of the test's context; the test fails if the page throws an uncaught error or leaves a promise
    rejection unhandled."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert not errors, f"uncaught errors in the page: {errors}"
