// The Upnext widget, part 4 of 4: start.
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
  placedItem();
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
