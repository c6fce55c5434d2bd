// The Upnext widget, part 2 of 4: events, queued in sessionStorage until acknowledged; the public commands.
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
// A page that declares no item (no meta tag, no upnext('view')) is read from its placements: when every
// data-item on the page names the same item, that is the page's item (a view is sent). Different data-items
// (a cart page, one per line) name no page item: declare it.
function placedItem() {
  if (pageItem) return;
  var named = {};
  [].forEach.call(d.querySelectorAll('[data-upnext][data-item]'), function (el) { named[el.dataset.item] = 1; });
  var keys = Object.keys(named);
  if (keys.length === 1) view(keys[0]);
  else if (keys.length > 1) warn('placements name different data-item values: no view sent; declare the page item');
}

