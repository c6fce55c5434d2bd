"""Keyboard use of the carousel (WAI-ARIA carousel pattern): one tab stop in the slides, arrow keys,
Home/End, previous/next buttons, a visible focus ring, plain links."""
from __future__ import annotations

from fake_upnext import cards
from playwright.sync_api import expect

FOCUSED = """() => {
    const a = document.querySelector('[data-upnext]').shadowRoot.activeElement;
    if (!a) return null;
    const slide = a.closest('[role=group]');
    return slide ? slide.getAttribute('aria-label') : a.getAttribute('aria-label');
}"""
SCROLL_LEFT = "document.querySelector('[data-upnext]').shadowRoot.querySelector('.tr').scrollLeft"


def open_carousel(site, page):
    body = '<a id="before" href="/">Before</a><div data-upnext="similar"></div><a id="after" href="/">After</a>'
    page.goto(site.page("/p/SKU-1", body=body, item="SKU-1"))
    expect(cards(page, "similar")).to_have_count(8)
    page.focus("#before")


def test_tab_enters_the_slides_once_and_arrow_keys_move_between_them(site, page, screenshot):
    open_carousel(site, page)
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == "Previous"
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == "Next"
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == "1 of 8"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.evaluate(FOCUSED) == "3 of 8"
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(FOCUSED) == "2 of 8"

    ring = page.evaluate("""() => {
        const s = getComputedStyle(document.querySelector('[data-upnext]').shadowRoot.activeElement);
        return [s.outlineStyle, parseFloat(s.outlineWidth)];
    }""")
    assert ring[0] == "solid" and ring[1] >= 2
    screenshot(page, "widget-carousel-keyboard-focus")

    page.keyboard.press("End")
    assert page.evaluate(FOCUSED) == "8 of 8"
    page.wait_for_function(f"{SCROLL_LEFT} > 0")        # the focused slide was scrolled into view
    expect(page.get_by_role("button", name="Next")).to_have_attribute("aria-disabled", "true")
    page.keyboard.press("Home")
    assert page.evaluate(FOCUSED) == "1 of 8"
    page.wait_for_function(f"{SCROLL_LEFT} === 0")
    page.keyboard.press("ArrowLeft")                       # stays on the first: no wrap, no rotation
    assert page.evaluate(FOCUSED) == "1 of 8"

    tab_stops = cards(page, "similar").evaluate_all("links => links.filter(a => a.tabIndex === 0).length")
    assert tab_stops == 1
    page.keyboard.press("Tab")                             # one Tab leaves the slides
    assert page.evaluate("document.activeElement.id") == "after"


def test_previous_and_next_buttons_page_through_the_slides(site, page):
    open_carousel(site, page)
    next_button = page.get_by_role("button", name="Next")
    prev_button = page.get_by_role("button", name="Previous")
    next_button.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(f"{SCROLL_LEFT} > 300")
    expect(prev_button).to_have_attribute("aria-disabled", "false")
    page.keyboard.press("ArrowLeft")                       # arrow keys on the buttons page too
    page.wait_for_function(f"{SCROLL_LEFT} === 0")
    expect(prev_button).to_have_attribute("aria-disabled", "true")
    next_button.click()
    page.wait_for_function(f"{SCROLL_LEFT} > 300")
    # the tab stop follows the first visible slide, so Tab lands where the visitor is looking
    page.wait_for_function("""() => {
        const links = [...document.querySelector('[data-upnext]').shadowRoot.querySelectorAll('a')];
        return links.findIndex(a => a.tabIndex === 0) > 0;
    }""")


def test_links_work_without_javascript_handlers(site, page):
    open_carousel(site, page)
    link = cards(page, "similar").nth(1)
    href = link.get_attribute("href")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(href)
    assert page.locator("h1").text_content() == "Page /p/SKU-3"
