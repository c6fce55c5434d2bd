from backend.snippets import README_HOST, README_KEY, SNIPPETS, snippets
from tests.support.readme import integrating_snippets


def test_readme_shows_exactly_the_admin_snippets():
    """README and admin cannot drift: the README's blocks are the templates with its placeholders filled in."""
    assert integrating_snippets() == [(s.page, html) for s, html in snippets(README_HOST, README_KEY)]


def test_snippets_cover_every_kind_of_page_and_event():
    pages = {s.page for s in SNIPPETS}
    assert {"Product page", "Home page", "Category page", "Video page"} <= pages
    text = "".join(s.template for s in SNIPPETS)
    for call in ("'cart'", "'purchase'", "'play'", "'watch'"):
        assert call in text


def test_host_and_key_filled_in():
    [(_, html), *_] = snippets("https://reco.example/", "pk_abc")
    assert '<script async src="https://reco.example/w.js" data-key="pk_abc"></script>' in html
    assert "{{" not in "".join(h for _, h in snippets("https://reco.example", "pk_abc"))
