/**
 * viewer.html's script, inlined into the page (plain ES2017, no libraries, nothing fetched).
 *
 * The rows sit in <script type="application/json" class="rows"> blocks; the page parses one block per
 * tick after it has drawn (so 20,000 rows never freeze it) and renders only the current page of
 * matching rows (PAGE at a time). The filters live in the URL hash (#out=dropped&uc=...&q=...&page=2
 * &open=<id>@<iteration>), so a view can be bookmarked or shared, and a headless browser can be
 * pointed at one. While blocks are still being read, <body data-ready="no">; then "yes".
 */
export const viewerClientScript = String.raw`(function () {
  'use strict';
  var PAGE = 50;
  var KEYS = ['q', 'uc', 'sk', 'it', 'src', 'out', 'page', 'open'];
  var LABEL = { 'kept-strong': 'kept strong', 'kept-target': 'kept target', iterated: 'iterated', dropped: 'dropped' };
  var $ = function (id) { return document.getElementById(id); };
  var facets = JSON.parse($('facets').textContent);
  var blocks = Array.prototype.slice.call(document.querySelectorAll('script.rows'));
  var rows = [];
  var hay = [];
  var parsed = 0;
  var state = readHash();
  var scrolled = false;

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c];
    });
  }
  function num(x) { return String(Math.round(x * 100) / 100); }
  function signed(x) { return (x > 0 ? '+' : '') + num(x); }
  function count(n) { return Number(n).toLocaleString('en-US'); }

  function readHash() {
    var s = { q: '', uc: '', sk: '', it: '', src: '', out: '', page: 1, open: '' };
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      if (!kv) return;
      var i = kv.indexOf('=');
      var k = decodeURIComponent(i < 0 ? kv : kv.slice(0, i));
      var v = i < 0 ? '' : decodeURIComponent(kv.slice(i + 1).replace(/\+/g, ' '));
      if (KEYS.indexOf(k) >= 0) s[k] = k === 'page' ? Math.max(1, parseInt(v, 10) || 1) : v;
    });
    return s;
  }
  function writeHash() {
    var parts = [];
    KEYS.forEach(function (k) {
      var v = state[k];
      if (v && !(k === 'page' && v === 1)) parts.push(k + '=' + encodeURIComponent(v));
    });
    var h = parts.length ? '#' + parts.join('&') : '';
    if (location.hash !== h) history.replaceState(null, '', h || location.pathname + location.search);
  }

  function fillSelect(sel, all, entries) {
    sel.innerHTML = '<option value="">' + esc(all) + '</option>' + entries.map(function (e) {
      return '<option value="' + esc(e[0]) + '">' + esc(e[1]) + '</option>';
    }).join('');
  }
  function byCount(map, label) {
    return Object.keys(map).sort(function (a, b) { return map[b] - map[a] || (a < b ? -1 : 1); })
      .map(function (k) { return [k, (label ? label(k) : k) + ' (' + count(map[k]) + ')']; });
  }
  fillSelect($('f-uc'), 'any use case', byCount(facets.useCases));
  fillSelect($('f-sk'), 'any skill', byCount(facets.skills));
  fillSelect($('f-it'), 'any iteration', Object.keys(facets.iterations).sort(function (a, b) { return a - b; })
    .map(function (k) { return [k, 'iteration ' + k + ' (' + count(facets.iterations[k]) + ')']; }));
  fillSelect($('f-src'), 'any source', [['strong', 'pair kept from strong'], ['target', 'pair kept from target'], ['none', 'no pair kept']]);
  fillSelect($('f-out'), 'any outcome', byCount(facets.decisions, function (k) { return LABEL[k] || k; }));
  var d = facets.decisions;
  $('summary').textContent = count(facets.rows) + ' judged iterations of ' + count(facets.instructions) +
    ' instructions: ' + ['kept-strong', 'kept-target', 'iterated', 'dropped'].map(function (k) {
      return count(d[k] || 0) + ' ' + LABEL[k];
    }).join(', ') + '.';

  function syncControls() {
    $('f-q').value = state.q;
    ['uc', 'sk', 'it', 'src', 'out'].forEach(function (k) { $('f-' + k).value = state[k]; });
  }

  function sourceOf(r) { return r.o.indexOf('kept-') === 0 ? r.o.slice(5) : 'none'; }
  function haystack(i) {
    if (hay[i] === undefined) {
      var r = rows[i];
      hay[i] = [r.id, r.q, r.as, r.at, r.ac.join(' '), r.uc, r.sk.join(' ')].join('\n').toLowerCase();
    }
    return hay[i];
  }
  function matching() {
    var terms = state.q.toLowerCase().split(/\s+/).filter(Boolean);
    var out = [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (state.uc && r.uc !== state.uc) continue;
      if (state.sk && r.sk.indexOf(state.sk) < 0) continue;
      if (state.it && String(r.it) !== state.it) continue;
      if (state.src && sourceOf(r) !== state.src) continue;
      if (state.out && r.d !== state.out) continue;
      if (terms.length) {
        var h = haystack(i), ok = true;
        for (var t = 0; t < terms.length && ok; t++) ok = h.indexOf(terms[t]) >= 0;
        if (!ok) continue;
      }
      out.push(i);
    }
    return out;
  }

  function why(r) {
    var floor = r.ms !== undefined && r.g > r.th && r.s < r.ms;
    var easy = floor ? 'gap ' + signed(r.g) + ' > θ ' + num(r.th) + ' but the strong score ' + num(r.s) +
      ' is below the minimum ' + num(r.ms) : '|gap| ' + num(Math.abs(r.g)) + ' ≤ θ ' + num(r.th);
    if (r.d === 'kept-strong') return 'gap ' + signed(r.g) + ' > θ ' + num(r.th) + ': the strong answer is kept.';
    if (r.d === 'kept-target') return 'gap ' + signed(r.g) + ' < −θ (−' + num(r.th) + '): the target answer is kept.';
    if (r.d === 'iterated') return easy + ': too easy for the target; iteration ' + (r.it + 1) + ' improves it with another Self-Rubrics action.';
    return easy + ': still too easy at the last iteration (' + r.it + '), so the instruction is dropped.';
  }
  function card(r) {
    var key = r.id + '@' + r.it;
    var meta = '<span class="id">' + esc(r.id) + '</span><span class="badge ' + r.d + '">' + esc(LABEL[r.d]) +
      '</span><span>iteration <b>' + r.it + '</b> of ' + r.of + '</span><span>strong <b>' + num(r.s) +
      '</b> · target <b>' + num(r.t) + '</b> · gap <b>' + signed(r.g) + '</b> (θ ' + num(r.th) + ')</span><span>' +
      esc(r.uc) + '</span>' + r.sk.map(function (s) { return '<span class="chip">' + esc(s) + '</span>'; }).join('');
    var actions = r.ac.length ? '<ol>' + r.ac.map(function (a) { return '<li>' + esc(a) + '</li>'; }).join('') + '</ol>'
      : '<p class="sub">none: the basic instruction from decode</p>';
    var judge = '<table><tr><th>order</th><th>answer A</th><th>answer B</th><th>score A</th><th>score B</th></tr>' +
      '<tr><td>strong first</td><td>strong</td><td>target</td><td>' + num(r.sf[0]) + '</td><td>' + num(r.sf[1]) + '</td></tr>' +
      '<tr><td>target first</td><td>target</td><td>strong</td><td>' + num(r.tf[0]) + '</td><td>' + num(r.tf[1]) + '</td></tr>' +
      '<tr><th colspan="3">average over both orders</th><td>strong ' + num(r.s) + '</td><td>target ' + num(r.t) + '</td></tr></table>';
    var detail = '<div class="detail"><div class="why"><b>Decision:</b> ' + esc(why(r)) + '</div>' +
      '<b>Self-Rubrics actions applied</b>' + actions + '<b>Judge, both orders</b>' + judge +
      '<div class="answers"><div class="' + (r.d === 'kept-strong' ? 'kept' : '') + '"><h4>strong answer</h4><pre>' +
      esc(r.as) + '</pre></div><div class="' + (r.d === 'kept-target' ? 'kept' : '') + '"><h4>target answer</h4><pre>' +
      esc(r.at) + '</pre></div></div></div>';
    return '<details class="row ' + r.d + '" data-key="' + esc(key) + '"' + (state.open === key ? ' open' : '') +
      '><summary><div class="meta">' + meta + '</div><p class="q">' + esc(r.q) + '</p></summary>' + detail + '</details>';
  }

  function render() {
    var hits = matching();
    var pages = Math.max(1, Math.ceil(hits.length / PAGE));
    // While blocks are still being read, a bookmarked later page may not exist yet: keep asking for it.
    if (state.page > pages && parsed >= blocks.length) state.page = pages;
    var page = Math.min(state.page, pages);
    var from = (page - 1) * PAGE;
    var shown = hits.slice(from, from + PAGE);
    $('rows').innerHTML = shown.length ? shown.map(function (i) { return card(rows[i]); }).join('')
      : '<p class="empty">No judged instruction matches these filters.</p>';
    var loading = parsed < blocks.length ? ' (reading: ' + count(rows.length) + ' of ' + count(facets.rows) + ' rows so far)' : '';
    $('status').textContent = (hits.length ? 'showing ' + count(from + 1) + '–' + count(from + shown.length) + ' of ' : '') +
      count(hits.length) + ' matching' + loading;
    $('pager').innerHTML = pages > 1 ? '<button data-page="1">first</button><button data-page="' + (page - 1) +
      '">previous</button> page ' + page + ' of ' + count(pages) + ' <button data-page="' + Math.min(pages, page + 1) +
      '">next</button><button data-page="' + pages + '">last</button>' : '';
    document.body.setAttribute('data-matching', String(hits.length));
    document.body.setAttribute('data-ready', parsed < blocks.length ? 'no' : 'yes');
    writeHash();
    // A link to one opened row (#open=<id>@<iteration>) scrolls to it once it is on the page.
    if (state.open && !scrolled) {
      var opened = document.querySelector('details[open]');
      if (opened) {
        // Below the sticky filter bar, not under it.
        var bar = document.querySelector('header').offsetHeight;
        var rect = opened.getBoundingClientRect();
        if (rect.top < bar || rect.top > window.innerHeight - 120)
          window.scrollTo(0, Math.max(0, rect.top + window.pageYOffset - bar - 8));
        scrolled = true;
      }
    }
  }

  function readNextBlock() {
    if (parsed >= blocks.length) return;
    var block = blocks[parsed];
    var part = JSON.parse(block.textContent);
    for (var i = 0; i < part.length; i++) rows.push(part[i]);
    block.textContent = '';
    parsed++;
    // Redraw while reading only now and then: the first page is already there after one block.
    if (parsed === 1 || parsed === blocks.length || parsed % 10 === 0) render();
    if (parsed < blocks.length) setTimeout(readNextBlock, 0);
  }

  var typing = 0;
  $('f-q').addEventListener('input', function () {
    clearTimeout(typing);
    typing = setTimeout(function () { state.q = $('f-q').value; state.page = 1; render(); }, 200);
  });
  ['uc', 'sk', 'it', 'src', 'out'].forEach(function (k) {
    $('f-' + k).addEventListener('change', function () { state[k] = $('f-' + k).value; state.page = 1; render(); });
  });
  $('f-reset').addEventListener('click', function () {
    state = { q: '', uc: '', sk: '', it: '', src: '', out: '', page: 1, open: '' };
    syncControls();
    render();
  });
  $('pager').addEventListener('click', function (e) {
    var p = e.target && e.target.getAttribute && e.target.getAttribute('data-page');
    if (p) { state.page = Math.max(1, parseInt(p, 10)); render(); window.scrollTo(0, 0); }
  });
  $('rows').addEventListener('toggle', function (e) {
    var key = e.target.getAttribute && e.target.getAttribute('data-key');
    if (!key) return;
    if (e.target.open) state.open = key;
    else if (state.open === key) state.open = '';
    writeHash();
  }, true);
  window.addEventListener('hashchange', function () { state = readHash(); syncControls(); render(); });

  syncControls();
  if (blocks.length) readNextBlock();
  else render();
})();
`;
