// The Upnext widget, part 3 of 4: placements, found, asked for and rendered as carousels.
// ---- placements: found, asked for, rendered ----
var gen = 0;                 // page generation: upnext('page') starts a new one
var chain = Promise.resolve();   // requests go one after another, so each excludes what is already shown
var shown = {}, placed = new WeakMap(), ours = new WeakSet(), CSS = '__CSS__', sheet = null;
var impressions = w.IntersectionObserver && new IntersectionObserver(function (entries) {
  entries.forEach(function (en) {
    var seen = en.target.upnextSeen;
    if (!seen || !en.isIntersecting || en.intersectionRatio < 0.499) return;
    impressions.unobserve(en.target);
    en.target.upnextSeen = null;
    seen();
  });
}, { threshold: 0.5 });

function page() {
  gen++;
  shown = {};
  viewed = {};
  pageItem = '';
  metaItem();
  placedItem();
  scan(d);
}
function scan(node) {
  if (node.matches && node.matches('[data-upnext]')) found(node);
  if (node.querySelectorAll) [].forEach.call(node.querySelectorAll('[data-upnext]'), found);
}
function found(host) {
  if (placed.get(host) === gen) return;
  placed.set(host, gen);
  var root = host.shadowRoot;
  try {
    if (!root) {
      root = host.attachShadow({ mode: 'open' });
      ours.add(root);
      adopt(root);
    }
  } catch (e) { root = null; }
  if (!root || !ours.has(root)) return warn('cannot render into <' + host.localName + '>: use a plain <div>');
  if (!root.firstChild) draw(root, host, null);      // the skeleton: reserves the final height
  var g = gen;
  chain = chain.then(function () { return g === gen && host.isConnected ? ask(host, root, g) : 0; })
    .catch(noop);
}
function adopt(root) {
  try {
    sheet = sheet || new CSSStyleSheet();
    if (!sheet.cssRules.length) sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {      // browsers without constructable stylesheets (needs style-src to allow it)
    el('style', root).textContent = CSS;
  }
}
function ask(host, root, g) {
  var n = clampN(host.getAttribute('data-n') || conf.n, 0);   // 0: the placement's own count, set on the server
  var p = new URLSearchParams({ key: KEY, placement: host.getAttribute('data-upnext') });
  if (n) p.set('n', n);
  var item = host.getAttribute('data-item') || pageItem;
  if (validId(item)) p.set('item', item);     // an id the server would refuse: ask without it
  else if (item) warn('data-item is not a valid item id: ignored');
  if (!GPC) {
    var s = session();
    p.set('session', s.id);
    if (s.history.length) p.set('history', s.history.join(','));
  }
  var exclude = Object.keys(shown).filter(listable);
  if (exclude.length) p.set('exclude', exclude.join(','));
  var abort = w.AbortController && new AbortController();
  var t = setTimeout(function () { if (abort) abort.abort(); }, REC_TIMEOUT_MS);
  return fetch(API + '/v1/recommendations?' + p, { credentials: 'omit', signal: abort && abort.signal })
    .then(function (res) { return res.ok ? res.json() : null; })
    .catch(function () { return null; })
    .then(function (answer) {
      clearTimeout(t);
      if (g === gen) draw(root, host, answer || {}, n || 50);
    });
}

function el(tag, parent, cls, text) {
  var e = d.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;     // catalogue text is only ever set as text
  if (parent) parent.appendChild(e);
  return e;
}
function attrs(e, values) {
  for (var k in values) e.setAttribute(k, values[k]);
  return e;
}
function price(it) {
  if (typeof it.price !== 'number' || !isFinite(it.price)) return '';
  var cur = CURRENCY_RE.test(it.currency) ? it.currency : '';
  try {
    return new Intl.NumberFormat(d.documentElement.lang || undefined,
      cur ? { style: 'currency', currency: cur } : { maximumFractionDigits: 2 }).format(it.price);
  } catch (e) { return it.price.toFixed(2) + (cur && ' ' + cur); }
}

// answer null: the skeleton. Otherwise the carousel, or nothing when there is nothing to show.
function draw(root, host, answer, n) {
  var items = [];
  if (answer) {
    (Array.isArray(answer.items) ? answer.items : []).forEach(function (it) {
      var url = it && validId(it.id) && safeUrl(it.url);
      if (url && !shown[it.id] && items.length < n) items.push({ it: it, url: url });
    });
  }
  var old = root.querySelector('section');
  if (old && impressions) impressions.unobserve(old);
  while (root.firstChild) root.removeChild(root.firstChild);
  if (answer && !items.length) return;
  var count = answer ? items.length : clampN(host.getAttribute('data-n'), N_DEFAULT);
  var title = host.getAttribute('data-title') || (answer && typeof answer.title === 'string' && answer.title);
  var label = host.getAttribute('data-label') || conf.label || 'Recommendations';
  var region = attrs(el('section', root, 'c'), { role: 'region', 'aria-roledescription': 'carousel',
                                                 part: 'carousel' });
  var head = el('div', region, 'hd');
  if (title) {
    attrs(el('h2', head, 't', title), { id: 'title', part: 'title' });
    region.setAttribute('aria-labelledby', 'title');
  } else region.setAttribute('aria-label', label);
  var nav = el('div', head, 'nav');
  var prev = attrs(el('button', nav, 'b p'), { type: 'button', 'aria-label': conf.prev || 'Previous',
                                               'aria-controls': 'slides', part: 'button' });
  var next = attrs(el('button', nav, 'b'), { type: 'button', 'aria-label': conf.next || 'Next',
                                             'aria-controls': 'slides', part: 'button' });
  var strip = attrs(el('div', region, 'tr'), { id: 'slides' });
  var links = [];
  for (var j = 0; j < count; j++) {
    var slide = attrs(el('div', strip, 's'), { role: 'group', 'aria-roledescription': 'slide',
                                               'aria-label': (j + 1) + ' ' + (conf.of || 'of') + ' ' + count });
    if (!answer) {         // a placeholder card with the same boxes as a real one
      var ph = el('div', slide, 'a ph');
      el('span', ph, 'm');
      el('span', ph, 'n');
      el('span', ph, 'pr');
      continue;
    }
    links.push(card(slide, items[j].it, items[j].url, j));
    shown[items[j].it.id] = 1;
  }
  if (!answer) {
    attrs(region, { 'aria-busy': 'true', 'aria-hidden': 'true' });
    prev.disabled = next.disabled = true;
    return;
  }
  carousel(region, strip, prev, next, links);
  var rec = REC_RE.test(answer.rec) ? answer.rec : '';
  if (!rec) return;
  var itemIds = items.map(function (x) { return x.it.id; });
  strip.addEventListener('click', clicked);
  strip.addEventListener('auxclick', clicked);
  function clicked(e) {
    var a = e.target.closest && e.target.closest('a');
    if (!a || e.button > 1) return;
    var it = items[a.getAttribute('data-i')].it;
    remember(it.id);
    track({ type: 'rec_click', rec: rec, item: it.id });
    handOff();            // the navigation that follows may not leave time for a batch
  }
  if (impressions && !GPC) {
    region.upnextSeen = function () { track({ type: 'rec_impression', rec: rec, items: itemIds }); };
    impressions.observe(region);
  }
}
function card(slide, it, url, j) {
  var a = attrs(el('a', slide, 'a'), { href: url, 'data-i': j, part: 'card', tabindex: j ? -1 : 0 });
  var media = attrs(el('span', a, 'm'), { part: 'image' });
  var title = typeof it.title === 'string' && it.title ? it.title : it.id;
  var src = safeUrl(it.image);
  var fallback = function () {
    while (media.firstChild) media.removeChild(media.firstChild);
    media.className = 'm x';
    media.textContent = title.trim().charAt(0).toUpperCase();
  };
  if (src) {
    var img = attrs(el('img', media), { src: src, alt: '', loading: 'lazy', decoding: 'async' });
    img.addEventListener('error', fallback);
  } else fallback();
  attrs(el('span', a, 'n', title), { part: 'name' });
  attrs(el('span', a, 'pr', price(it)), { part: 'price' });
  return a;
}
// The WAI-ARIA carousel pattern without rotation: buttons page through, arrow keys move between
// slides (one tab stop), focus is visible; links stay plain <a href>.
function carousel(region, strip, prev, next, links) {
  var step = function (dir) { strip.scrollBy({ left: dir * Math.max(strip.clientWidth * 0.8, 100) }); };
  prev.addEventListener('click', function () { step(-1); });
  next.addEventListener('click', function () { step(1); });
  var current = 0;
  var focus = function (j) {
    j = Math.max(0, Math.min(links.length - 1, j));
    links[current].tabIndex = -1;
    links[current = j].tabIndex = 0;
    links[j].focus({ preventScroll: true });
    links[j].parentNode.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  };
  region.addEventListener('keydown', function (e) {
    var key = e.key, on = links.indexOf(e.target);
    var dir = key === 'ArrowRight' ? 1 : key === 'ArrowLeft' ? -1 : 0;
    if (on < 0) {
      if (dir) { step(dir); e.preventDefault(); }
      return;
    }
    if (dir) focus(on + dir);
    else if (key === 'Home') focus(0);
    else if (key === 'End') focus(links.length - 1);
    else return;
    e.preventDefault();
  });
  strip.addEventListener('focusin', function (e) {
    var j = links.indexOf(e.target);
    if (j >= 0 && j !== current) { links[current].tabIndex = -1; links[current = j].tabIndex = 0; }
  });
  var frame = 0;
  var update = function () {
    frame = 0;
    var left = strip.scrollLeft, end = strip.scrollWidth - strip.clientWidth - 2;
    prev.setAttribute('aria-disabled', left <= 2);
    next.setAttribute('aria-disabled', left >= end);
    if (strip.contains(strip.getRootNode().activeElement)) return;
    for (var j = 0; j < links.length; j++) {     // the tab stop follows the first visible slide
      if (links[j].parentNode.offsetLeft >= left - 2) {
        links[current].tabIndex = -1;
        links[current = j].tabIndex = 0;
        break;
      }
    }
  };
  strip.addEventListener('scroll', function () { frame = frame || requestAnimationFrame(update); },
                         { passive: true });
  update();
  if (w.ResizeObserver) new ResizeObserver(function () { update(); }).observe(strip);
}

