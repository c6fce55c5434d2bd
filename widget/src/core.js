// The Upnext widget, part 1 of 4: configuration from the script tag, helpers, storage, the session.
// build.py joins core.js, events.js, carousel.js and start.js inside one function scope (w = window,
// d = document, strict mode), inlines carousel.css as the CSS string and minifies the result.
// Privacy: the session id and history live in sessionStorage only; no cookie, no localStorage;
// with Global Privacy Control on, nothing is stored or sent and the carousels ask for popular items.
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
var ID_RE = '__ID_RE__';                     // the server's rule for item ids (backend/item_ids.py), at build time

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
function validId(id) {    // exactly what the server accepts
  return typeof id === 'string' && ID_RE.test(id);
}
function listable(id) {   // history and exclude are comma-separated: an id with a comma cannot travel there
  return validId(id) && id.indexOf(',') < 0;
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
  s.history = s.history.filter(listable);   // an id the server refuses would cost every later answer
  s.last = now;
  save(S_SESSION, s);
  return s;
}
function remember(item) {
  if (GPC || !listable(item)) return;
  var s = session(), h = s.history;
  if (h[h.length - 1] !== item) h.push(item);
  if (h.length > HISTORY) h.splice(0, h.length - HISTORY);
  save(S_SESSION, s);
}

