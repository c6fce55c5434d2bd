/*! Upnext widget: recommendation carousels and visit events (api.md). Apache-2.0 */
// Dependency-free; built by widget/build.py (the stylesheet is inlined at __CSS__, then minified).
// Privacy: the session id and history live in sessionStorage only; no cookie, no localStorage;
// with Global Privacy Control on, nothing is stored or sent and the carousels ask for popular items.
(function (w, d) {
  'use strict';
  var stub = w.upnext = w.upnext || function f() { (f.q = f.q || []).push(arguments); };
  if (stub.loaded) return;                    // a second copy of the script: the first one serves
  stub.loaded = 1;

  var IDLE_MS = 30 * 60 * 1000;               // a gap this long starts a new session
  var HISTORY = 20;                            // item ids kept for ?history=
  var MAX_QUEUE = 200;                         // unacknowledged events kept; the oldest are dropped
  var BATCH = 10;                              // a batch this large is sent at once...
  var FLUSH_MS = 1000;                         // ...a smaller one after this delay
  var MAX_SEND = 50;                           // events per request (the server takes 100)
  var MAX_BACKOFF_MS = 60 * 1000;
  var REC_TIMEOUT_MS = 8000;
  var S_SESSION = 'upnext:session', S_QUEUE = 'upnext:queue', S_RETRY = 'upnext:retry';
  var REC_RE = /^r_[\w-]{1,62}$/;
  var CURRENCY_RE = /^[A-Z]{3}$/;

  var script = d.currentScript || d.querySelector('script[src][data-key]');
  var conf = (script && script.dataset) || {};
  var KEY = conf.key || '';
  var API = apiBase(conf.api || (script && script.src) || location.href);
  var GPC = navigator.globalPrivacyControl === true;
  var N_DEFAULT = clampN(conf.n, 8);

  function noop() {}
  function warn(msg) { if (w.console) console.warn('upnext: ' + msg); }
  function apiBase(url) {
    try { var u = new URL(url, d.baseURI); return conf.api ? u.href.replace(/\/+$/, '') : u.origin; }
    catch (e) { return location.origin; }
  }
  function clampN(value, fallback) {
    var n = parseInt(value, 10);
    return n > 0 ? Math.min(n, 50) : fallback;
  }
  function validId(id) {    // what the server accepts: 1-256 characters, no control characters
    return typeof id === 'string' && id.length > 0 && id.length <= 256 && !/[\u0000-\u001f\u007f-\u009f]/.test(id);
  }
  function safeUrl(url) {   // only http(s) (relative ones resolve against the page); never javascript: or data:
    if (typeof url !== 'string' || !url) return null;
    try { var u = new URL(url, d.baseURI); } catch (e) { return null; }
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  }

  // ---- storage: sessionStorage when the browser lets us, this page's memory otherwise ----
  var store = null, memory = {};
  try { store = w.sessionStorage; } catch (e) { /* blocked (sandboxed frame, privacy settings) */ }
  function load(name, fallback) {
    if (!(name in memory)) {
      try { memory[name] = store.getItem(name); } catch (e) { memory[name] = null; }
    }
    try { return memory[name] ? JSON.parse(memory[name]) : fallback; } catch (e) { return fallback; }
  }
  function save(name, value) {
    memory[name] = value == null ? null : JSON.stringify(value);
    try {
      if (value == null) store.removeItem(name); else store.setItem(name, memory[name]);
    } catch (e) { /* full or blocked: this page keeps it in memory */ }
  }

  // ---- session: random id (144 bits, base64url), last activity, recent items (oldest first) ----
  function newId() {
    var bytes = new Uint8Array(18);
    crypto.getRandomValues(bytes);
    return btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, '-').replace(/\//g, '_');
  }
  function session() {       // the current session, touched (a call is an activity)
    var now = Date.now(), s = load(S_SESSION, null);
    if (!s || typeof s.id !== 'string' || !(now - s.last < IDLE_MS) || !Array.isArray(s.history)) {
      s = { id: newId(), history: [] };
    }
    s.last = now;
    save(S_SESSION, s);
    return s;
  }
  function remember(item) {
    if (GPC) return;
    var s = session(), h = s.history;
    if (h[h.length - 1] !== item) h.push(item);
    if (h.length > HISTORY) h.splice(0, h.length - HISTORY);
    save(S_SESSION, s);
  }

  // ---- events: queued in sessionStorage until the server acknowledges them ----
  var timer = 0, timerAt = 0, sending = null, seq = 0;

  function track(event) {
    if (GPC || !KEY) return;
    event.ts = Date.now();
    var q = load(S_QUEUE, []);
    q.push({ i: event.ts.toString(36) + '.' + (++seq) + Math.random().toString(36).slice(2, 6),
             k: KEY, s: session().id, e: event });
    if (q.length > MAX_QUEUE) q.splice(0, q.length - MAX_QUEUE);
    save(S_QUEUE, q);
    schedule(q.length - (sending ? sending.length : 0) >= BATCH ? 0 : FLUSH_MS);
  }
  function retryState() { return load(S_RETRY, null) || { n: 0, until: 0 }; }
  function schedule(ms) {
    var at = Math.max(Date.now() + ms, retryState().until);
    if (timer && timerAt <= at) return;
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(flush, Math.min(at - Date.now(), 36e5));
  }
  function ids(entries) {
    var set = {};
    entries.forEach(function (x) { set[x.i] = 1; });
    return set;
  }
  function nextBatch(q) {    // the oldest events of one key and session, small enough for keepalive
    var out = [];
    for (var j = 0; j < q.length && out.length < MAX_SEND; j++) {
      if (q[j].k !== q[0].k || q[j].s !== q[0].s) break;
      out.push(q[j]);
    }
    while (out.length > 1 && body(out).length > 48000) out.length = out.length >> 1;
    return out;
  }
  function body(batch) {
    return JSON.stringify({ key: batch[0].k, session: batch[0].s,
                            events: batch.map(function (x) { return x.e; }) });
  }
  function flush() {
    clearTimeout(timer);
    timer = 0;
    var q = load(S_QUEUE, []);
    if (sending || !q.length) return;
    if (retryState().until > Date.now()) return schedule(0);
    var batch = sending = nextBatch(q);
    try {
      fetch(API + '/v1/events', { method: 'POST', keepalive: true, credentials: 'omit',
                                  headers: { 'Content-Type': 'text/plain' }, body: body(batch) })
        .then(function (res) {
          var s = res.status;
          if (s === 429 || s === 408 || s >= 500) failed(batch, res.headers.get('Retry-After'));
          else acknowledged(batch, res.ok);   // other 4xx: the batch can never succeed, drop it
        }, function () { failed(batch); })
        .catch(noop);
    } catch (e) { failed(batch); }
  }
  function acknowledged(batch, ok) {
    var gone = ids(batch);
    if (!ok) warn('events refused by the server (see the network panel); dropped');
    save(S_QUEUE, load(S_QUEUE, []).filter(function (x) { return !gone[x.i]; }));
    save(S_RETRY, null);
    sending = null;
    if (load(S_QUEUE, []).length) schedule(0);
  }
  function failed(batch, retryAfter) {
    var r = retryState(), q = load(S_QUEUE, []), have = ids(q);
    r.n = Math.min(r.n + 1, 16);
    var wait = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, r.n - 1)) * (0.5 + Math.random() / 2);
    var asked = /^\d+$/.test(retryAfter) ? retryAfter * 1000 : Date.parse(retryAfter) - Date.now();
    if (asked > 0) wait = Math.max(wait, Math.min(asked, 36e5));
    r.until = Date.now() + wait;
    save(S_RETRY, r);
    // a hidden page dropped this batch from the queue (its keepalive request carried it): put it back
    q = batch.filter(function (x) { return !have[x.i]; }).concat(q);
    save(S_QUEUE, q.slice(-MAX_QUEUE));
    sending = null;
    schedule(0);
  }
  function onHide(e) {
    if (e.type !== 'visibilitychange' || d.visibilityState === 'hidden') handOff();
  }
  // The page may be going away (hidden, unloading, a click on a recommendation): hand the waiting events
  // to the browser, which sends beacons even after the page is gone. Not while the server is failing:
  // then they stay queued and the next page (or this one, when it comes back) retries them.
  function handOff() {
    if (GPC || retryState().n || !navigator.sendBeacon) return;
    var q = load(S_QUEUE, []), busy = ids(sending || []);
    var rest = q.filter(function (x) { return !busy[x.i]; }), sent = {};
    while (rest.length) {
      var batch = nextBatch(rest);
      rest = rest.slice(batch.length);
      try { if (!navigator.sendBeacon(API + '/v1/events', body(batch))) continue; } catch (err) { continue; }
      batch.forEach(function (x) { sent[x.i] = 1; });
    }
    // the batch in flight is carried by its keepalive request; it is put back only if that one fails
    (sending || []).forEach(function (x) { sent[x.i] = 1; });
    if (q.length) save(S_QUEUE, q.filter(function (x) { return !sent[x.i]; }));
  }

  // ---- the page's item and the public commands ----
  var pageItem = '', viewed = {};
  function view(item) {
    if (!validId(item)) return warn('view needs an item id (1-256 characters)');
    pageItem = item;
    if (viewed[item] || GPC) return;
    viewed[item] = 1;
    remember(item);
    track({ type: 'view', item: item });
  }
  function trackCustom(type, props) {
    props = props || {};
    var ev = { type: type, item: props.item };
    if (!/^(cart|purchase|play|watch)$/.test(type)) return warn('unknown event type ' + type);
    if (!validId(ev.item)) return warn(type + ' needs {item: "id"}');
    if (REC_RE.test(props.rec)) ev.rec = props.rec;
    if (type === 'watch') {
      if (!(props.seconds >= 0 && props.seconds <= 86400)) return warn('watch needs {seconds: 0-86400}');
      ev.seconds = +props.seconds;
    } else if (type !== 'play') {
      if (props.value >= 0 && isFinite(props.value)) ev.value = +props.value;
      if (CURRENCY_RE.test(props.currency)) ev.currency = props.currency;
    }
    if (type === 'play') remember(ev.item);
    track(ev);
  }
  function command(args) {
    var name = args[0];
    if (name === 'view') view(args[1]);
    else if (name === 'track') trackCustom(args[1], args[2]);
    else if (name === 'page') page();
    else warn('unknown command ' + name);
  }
  function metaItem() {
    var meta = d.querySelector('meta[name="upnext:item"]');
    if (meta && meta.content) view(meta.content);
  }

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
    var n = clampN(host.getAttribute('data-n'), N_DEFAULT);
    var p = new URLSearchParams({ key: KEY, placement: host.getAttribute('data-upnext'), n: n });
    var item = host.getAttribute('data-item') || pageItem;
    if (item) p.set('item', item);
    if (!GPC) {
      var s = session();
      p.set('session', s.id);
      if (s.history.length) p.set('history', s.history.join(','));
    }
    var exclude = Object.keys(shown);
    if (exclude.length) p.set('exclude', exclude.join(','));
    var abort = w.AbortController && new AbortController();
    var t = setTimeout(function () { if (abort) abort.abort(); }, REC_TIMEOUT_MS);
    return fetch(API + '/v1/recommendations?' + p, { credentials: 'omit', signal: abort && abort.signal })
      .then(function (res) { return res.ok ? res.json() : null; })
      .catch(function () { return null; })
      .then(function (answer) {
        clearTimeout(t);
        if (g === gen) draw(root, host, answer || {}, n);
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

  // ---- start: after the document is parsed, so the meta item and the placements are there ----
  function start() {
    var queued = stub.q || [];
    var api = w.upnext = function () {
      try { command(arguments); } catch (e) { warn(e && e.message); }
    };
    api.loaded = 1;
    if (!KEY) warn('the script tag needs data-key="pk_..."');
    metaItem();
    queued.forEach(function (args) { api.apply(null, args); });
    if (!GPC && load(S_QUEUE, []).length) schedule(FLUSH_MS);   // left by an earlier page
    scan(d);
    new MutationObserver(function (records) {
      records.forEach(function (r) {
        [].forEach.call(r.addedNodes, function (node) { if (node.nodeType === 1) scan(node); });
      });
    }).observe(d.documentElement, { childList: true, subtree: true });
    if (!GPC) {
      d.addEventListener('visibilitychange', onHide);
      w.addEventListener('pagehide', onHide);
    }
  }
  try {
    if (d.readyState === 'loading') d.addEventListener('DOMContentLoaded', start);
    else start();
  } catch (e) { warn(e && e.message); }
})(window, document);
