"""The integration snippets, written once: the README's "Integrating" section shows them with ``https://RECO-HOST``
and ``pk_live_xxx``, the admin's "Sites and keys" page with the server's address and the site's own key
(tests/test_snippets.py checks that the README holds exactly these, and the e2e test pastes them into a page).

The rule they rely on (widget/src/events.js ``placedItem``): a page's item is its ``<meta name="upnext:item">``
or its ``upnext('view', id)`` call; a page that declares neither takes the ``data-item`` of its placements when
they all name the same item, so the product page below sends its view with nothing more.
"""
from __future__ import annotations

from dataclasses import dataclass

README_HOST = "https://RECO-HOST"
README_KEY = "pk_live_xxx"
_HOST, _KEY = "{{HOST}}", "{{KEY}}"

_SCRIPT = f'<script async src="{_HOST}/w.js" data-key="{_KEY}"></script>'
_STUB = "window.upnext = window.upnext || function () { (upnext.q = upnext.q || []).push(arguments) };"


@dataclass(frozen=True)
class Snippet:
    page: str          # kind of page, as the README's heading names it
    note: str          # one line: what it sends
    template: str      # HTML with {{HOST}} and {{KEY}}

    def html(self, host: str, key: str) -> str:
        return self.template.replace(_HOST, host.rstrip("/")).replace(_KEY, key)


SNIPPETS = (
    Snippet("Product page", "a view of SKU-123 (the placement's data-item) and, from your add-to-cart button, a cart",
            f"""{_SCRIPT}
<div data-upnext="product-page" data-item="SKU-123"></div>
<button type="button" id="add-to-cart">Add to cart</button>
<script>
{_STUB}
document.getElementById('add-to-cart').addEventListener('click', function () {{
  upnext('track', 'cart', {{item: 'SKU-123', value: 49.9, currency: 'EUR'}});
}});
</script>"""),
    Snippet("Home page", "no item: a carousel that follows the visit (popular items for a new visitor)",
            f"""{_SCRIPT}
<div data-upnext="home"></div>"""),
    Snippet("Category page", "no item: a carousel for the visit so far",
            f"""{_SCRIPT}
<div data-upnext="category"></div>"""),
    Snippet("Video page", "a view of V-7, a play when it starts and the seconds watched when it pauses or ends",
            f"""{_SCRIPT}
<video id="player" src="/videos/V-7.mp4" controls></video>
<div data-upnext="up-next" data-item="V-7"></div>
<script>
{_STUB}
(function (video, item, sent) {{
  video.addEventListener('play', function () {{ upnext('track', 'play', {{item: item}}); }}, {{once: true}});
  function watched() {{
    for (var s = 0, i = 0; i < video.played.length; i++) s += video.played.end(i) - video.played.start(i);
    if (s - sent >= 1) {{ upnext('track', 'watch', {{item: item, seconds: Math.round(s - sent)}}); sent = s; }}
  }}
  video.addEventListener('pause', watched);
  video.addEventListener('ended', watched);
}})(document.getElementById('player'), 'V-7', 0);
</script>"""),
    Snippet("Order confirmation page", "one purchase per item bought",
            f"""{_SCRIPT}
<script>
{_STUB}
upnext('track', 'purchase', {{item: 'SKU-123', value: 49.9, currency: 'EUR'}});
</script>"""),
)


def snippets(host: str, key: str) -> list[tuple[Snippet, str]]:
    """Every snippet with ``host`` (the Upnext server's base URL) and ``key`` (a publishable key) filled in."""
    return [(s, s.html(host, key)) for s in SNIPPETS]
