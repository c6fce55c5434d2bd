/* The demo sites' own script: the Upnext queue stub (so calls made before /w.js loads are kept), a cart kept in
   sessionStorage, and a pretend video player that reports play and watch time. No inline scripts anywhere. */
window.upnext = window.upnext || function () { (window.upnext.q = window.upnext.q || []).push(arguments); };
(function () {
  var KEY = 'demo-cart';
  function cart() { try { return JSON.parse(sessionStorage.getItem(KEY)) || []; } catch (e) { return []; } }
  function save(c) { try { sessionStorage.setItem(KEY, JSON.stringify(c)); } catch (e) { /* private mode */ } }
  function money(v) { return '\u20ac' + Number(v).toFixed(2); }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }

  function showCount() {
    var n = cart().length;
    document.querySelectorAll('[data-cart-count]').forEach(function (e) { e.textContent = String(n); });
  }

  function addToCart(button) {
    var item = { id: button.dataset.item, title: button.dataset.title, price: parseFloat(button.dataset.price) };
    var c = cart(); c.push(item); save(c); showCount();
    upnext('track', 'cart', { item: item.id, value: item.price, currency: 'EUR' });
    var note = document.querySelector('[data-added]'); if (note) note.hidden = false;
  }

  function renderCart() {
    var list = document.querySelector('[data-cart-list]'); if (!list) return;
    var c = cart(), total = 0;
    if (!c.length) return;
    list.textContent = '';
    c.forEach(function (it) {
      var line = el('div', 'line'); line.appendChild(el('span', null, it.title)); line.appendChild(el('span', 'price', money(it.price)));
      list.appendChild(line); total += it.price;
    });
    var t = document.querySelector('[data-cart-total]'); t.textContent = 'Total ' + money(total); t.hidden = false;
    var buy = document.querySelector('[data-checkout]'); buy.hidden = false;
    buy.addEventListener('click', function () {
      cart().forEach(function (it) { upnext('track', 'purchase', { item: it.id, value: it.price, currency: 'EUR' }); });
      save([]); showCount(); list.textContent = ''; t.hidden = true; buy.hidden = true;
      document.querySelector('[data-thanks]').hidden = false;
    });
  }

  function player(box) {
    var item = box.dataset.item, duration = parseInt(box.dataset.duration, 10) || 600;
    var button = box.querySelector('[data-play]'), bar = box.querySelector('[data-progress]'), time = box.querySelector('[data-time]');
    var pos = 0, timer = null, reported = 0, started = false;
    function fmt(s) { s = Math.floor(s); return Math.floor(s / 60) + ':' + ('0' + (s % 60)).slice(-2); }
    function report() {
      if (pos - reported >= 1) { upnext('track', 'watch', { item: item, seconds: Math.round((pos - reported) * 10) / 10 }); reported = pos; }
    }
    function tick() {
      pos = Math.min(duration, pos + 10);            /* a demo second is ten video seconds */
      bar.style.width = (100 * pos / duration) + '%';
      time.textContent = fmt(pos) + ' / ' + fmt(duration);
      if (pos >= duration) stop();
    }
    function stop() { clearInterval(timer); timer = null; button.textContent = '\u25b6 Play'; report(); }
    button.addEventListener('click', function () {
      if (timer) { stop(); return; }
      if (!started) { upnext('track', 'play', { item: item }); started = true; }
      button.textContent = '\u275a\u275a Pause'; timer = setInterval(tick, 1000);
    });
    document.addEventListener('visibilitychange', function () { if (document.visibilityState === 'hidden') report(); });
  }

  document.addEventListener('DOMContentLoaded', function () {
    showCount(); renderCart();
    document.querySelectorAll('[data-add-to-cart]').forEach(function (b) { b.addEventListener('click', function () { addToCart(b); }); });
    document.querySelectorAll('[data-player]').forEach(player);
  });
})();
