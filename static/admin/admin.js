/* Upnext admin: small enhancements only; every page works without them.
   - the "Menu" button on narrow screens; the site switcher submits on change
   - copy buttons (data-copy="element id") and confirmations (form[data-confirm])
   - live progress of training runs (tr[data-run-url]: polled every second, the page reloads when a run ends)
   - the placement preview follows the form's title and item count as you type */
(function () {
  'use strict';
  document.documentElement.classList.add('js');

  function ready(fn) {
    if (document.readyState !== 'loading') fn(); else document.addEventListener('DOMContentLoaded', fn);
  }

  ready(function () {
    var toggle = document.querySelector('[data-menu-toggle]');
    var side = document.getElementById('side');
    if (toggle && side) {
      toggle.addEventListener('click', function () {
        var open = side.classList.toggle('open');
        toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
      });
    }

    document.querySelectorAll('select[data-autosubmit]').forEach(function (select) {
      var button = select.form.querySelector('[data-autosubmit-button]');
      if (button) button.hidden = true;
      select.addEventListener('change', function () { select.form.submit(); });
    });

    document.querySelectorAll('[data-copy]').forEach(function (button) {
      button.addEventListener('click', function () {
        var source = document.getElementById(button.getAttribute('data-copy'));
        if (!source || !navigator.clipboard) return;
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          var label = button.textContent;
          button.textContent = 'Copied';
          setTimeout(function () { button.textContent = label; }, 1500);
        });
      });
    });

    document.querySelectorAll('form[data-confirm]').forEach(function (form) {
      form.addEventListener('submit', function (event) {
        if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
      });
    });

    document.querySelectorAll('tr[data-run-url]').forEach(followRun);
    document.querySelectorAll('[data-live-url]').forEach(followLive);
    setUpPreview();
  });

  function followRun(row) {
    var url = row.getAttribute('data-run-url');
    var field = function (name) { return row.querySelector('[data-field="' + name + '"]'); };
    function poll() {
      fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (res) { return res.ok ? res.json() : null; })
        .then(function (run) {
          if (!run) return setTimeout(poll, 3000);
          if (!run.active) {          // reload without the 'run started' notice, at the runs
            window.history.replaceState(null, '', window.location.pathname + '#runs');
            window.location.reload();
            return;
          }
          var p = run.progress || {};
          field('status').textContent = run.status;
          field('status').className = 'badge status-' + run.status;
          field('phase').textContent = run.phase !== run.status ? run.phase : '';
          if (p.fraction !== undefined) field('fraction').value = p.fraction;
          if (p.n_trials) {
            field('detail').textContent = 'trial ' + p.trial + '/' + p.n_trials +
              (p.best_value != null ? ' · best served R@20 ' + p.best_value.toFixed(4) : '');
          } else if (p.epoch) {
            field('detail').textContent = 'epoch ' + p.epoch + '/' + p.n_epochs + ' · loss ' + p.loss.toFixed(4) +
              ' · ' + Math.round(p.events_per_second).toLocaleString() + ' events/s';
          }
          setTimeout(poll, 1000);
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 1000);
  }

  // the install check: poll its JSON every 5 s, reload when a line's colour changed
  function followLive(section) {
    var url = section.getAttribute('data-live-url'), last = null;
    function poll() {
      fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (res) { return res.ok ? res.json() : null; })
        .then(function (data) {     // the lines' colours: the page reloads when one changes
          var text = data && data.checks.map(function (c) { return c.key + ':' + c.status; }).join(',');
          if (text && last && text !== last) return window.location.reload();
          if (text) last = text;
          setTimeout(poll, 5000);
        })
        .catch(function () { setTimeout(poll, 5000); });
    }
    poll();
  }

  function setUpPreview() {
    var frame = document.querySelector('[data-preview-frame]');
    if (!frame) return;
    var base = frame.getAttribute('src').split('?')[0];
    var timer = null;
    function refresh() {
      var params = new URLSearchParams();
      document.querySelectorAll('[data-preview-param]').forEach(function (input) {
        if (input.value) params.set(input.getAttribute('data-preview-param'), input.value);
      });
      frame.setAttribute('src', base + '?' + params.toString());
    }
    document.querySelectorAll('[data-preview-param]').forEach(function (input) {
      input.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(refresh, 400); });
    });
    var controls = document.querySelector('[data-preview-controls]');
    // With a table of what the placement's controls did (computed by the server for the previewed item), "Show"
    // reloads the page so that the table follows; otherwise only the preview changes.
    if (controls && !document.querySelector('[data-preview-steps]')) {
      controls.addEventListener('submit', function (event) { event.preventDefault(); refresh(); });
    }
  }
})();
