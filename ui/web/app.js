// vigil UI: vanilla JS, no build step, no dependency. Everything shown comes
// from /api (see docs/api.md). Text is always set with textContent, never
// parsed as HTML: device keys, messages and values come from sensors.
'use strict';
(() => {
  const $ = (s, r = document) => r.querySelector(s);
  const $$ = (s, r = document) => Array.from(r.querySelectorAll(s));
  const SVG = 'http://www.w3.org/2000/svg';
  const WINDOW_MS = 10 * 60 * 1000; // what the charts show
  const TIME_FIELDS = new Set(['ts', 'time', 'timestamp']);

  // ---- token: ?token= once, then sessionStorage, sent as a header ----------
  const url = new URL(location.href);
  if (url.searchParams.has('token')) {
    sessionStorage.setItem('vigil.token', url.searchParams.get('token'));
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  const token = () => sessionStorage.getItem('vigil.token') || '';
  const authHeaders = (h = {}) => (token() ? { ...h, Authorization: 'Bearer ' + token() } : h);

  class HTTPError extends Error {
    constructor(status, msg, body) { super(msg); this.status = status; this.body = body; }
  }
  async function api(path, opts = {}) {
    const r = await fetch(path, { ...opts, headers: authHeaders(opts.headers), cache: 'no-store' });
    if (r.status === 401) { showLogin(); throw new HTTPError(401, 'unauthorized'); }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new HTTPError(r.status, body.error || r.statusText, body);
    return body;
  }
  function showLogin() {
    $('#login').hidden = false;
    $('main').hidden = true;
  }
  $('#login').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('vigil.token', $('#token-input').value.trim());
    location.reload();
  });

  // ---- small helpers -------------------------------------------------------
  function el(tag, attrs = {}, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  function svgEl(tag, attrs = {}) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  function fmtNum(v) {
    if (typeof v !== 'number') return v === null || v === undefined ? '–' : String(v);
    if (Number.isInteger(v)) return v.toLocaleString();
    const a = Math.abs(v);
    return v.toFixed(a >= 100 ? 1 : a >= 1 ? 2 : 3).replace(/\.?0+$/, '');
  }
  function fmtDur(s) {
    if (s === null || s === undefined) return '–';
    if (s < 1) return Math.round(s * 1000) + ' ms';
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' m ' + Math.floor(s % 60) + ' s';
    const h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' m';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }
  function fmtBytes(n) {
    if (!n) return '0 B';
    const u = ['B', 'KiB', 'MiB', 'GiB']; let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  }
  const fmtTime = (t) => (t ? new Date(t).toLocaleString() : '–');
  const fmtClock = (t) => new Date(t).toLocaleTimeString();
  // A device's own timestamp field as a clock time: raw RFC 3339 text or a
  // Unix number (its magnitude tells s, ms, µs or ns, as the gateway reads
  // it) wraps badly in a narrow card and says little.
  function fmtStamp(v) {
    let ms = NaN;
    if (typeof v === 'number') {
      const a = Math.abs(v);
      ms = a < 1e11 ? v * 1e3 : a < 1e14 ? v : a < 1e17 ? v / 1e3 : v / 1e6;
    } else if (typeof v === 'string') ms = Date.parse(v);
    return Number.isFinite(ms) ? fmtClock(ms) : null;
  }

  // ---- tabs ----------------------------------------------------------------
  function showTab() {
    const name = (location.hash || '#overview').slice(1);
    const known = $$('section.tab').some((s) => s.dataset.tab === name);
    const tab = known ? name : 'overview';
    for (const s of $$('section.tab')) s.hidden = s.dataset.tab !== tab;
    for (const a of $$('#tabs a')) a.classList.toggle('active', a.dataset.tab === tab);
    if (tab === 'rules') loadRules();
    if (tab === 'devices' && selected) drawChart();
  }
  window.addEventListener('hashchange', showTab);

  // ---- overview --------------------------------------------------------------
  let prevStatus = null;
  let lastStatus = null;
  function setStat(name, value, level) {
    for (const e of $$(`[data-stat="${name}"]`)) {
      $('.value', e).textContent = value;
      if (level) e.dataset.level = level; else delete e.dataset.level;
    }
  }
  const setSub = (name, text) => { for (const e of $$(`[data-sub="${name}"]`)) e.textContent = text; };
  function onStatus(st) {
    lastStatus = st;
    $('#gateway').textContent = st.gateway || '';
    if (prevStatus) {
      const dt = (Date.parse(st.now) - Date.parse(prevStatus.now)) / 1000;
      if (dt > 0) {
        setStat('events_rate', fmtNum(Math.max(0, (st.events_total - prevStatus.events_total) / dt)));
        setStat('alerts_rate', fmtNum(Math.max(0, (st.alerts_total - prevStatus.alerts_total) / dt)));
      }
    }
    prevStatus = st;
    setSub('events_total', fmtNum(st.events_total) + ' total');
    setSub('alerts_total', fmtNum(st.alerts_total) + ' total');
    setStat('process_lag', fmtDur(st.process_lag_seconds), st.process_lag_seconds > 10 ? 'warn' : '');
    setStat('watermark_delay', fmtDur(st.watermark_delay_seconds));
    setSub('watermark', st.watermark ? fmtTime(st.watermark) : 'no events yet');
    setStat('checkpoint', st.last_checkpoint ? fmtDur(st.checkpoint_age_seconds) + ' ago' : 'none yet',
      st.checkpoint_error ? 'bad' : '');
    setSub('checkpoint', st.last_checkpoint
      ? `${fmtBytes(st.checkpoint_bytes)} in ${fmtDur(st.checkpoint_duration_seconds)}` : '');
    setStat('outbox', fmtNum(st.outbox_depth), st.outbox_depth > 0 && !st.upstream_connected ? 'warn' : '');
    setSub('upstream', 'upstream ' + (st.upstream_connected ? 'connected' : 'disconnected'));
    setStat('broker', st.broker_connected ? 'connected' : 'disconnected', st.broker_connected ? '' : 'bad');
    setSub('messages_total', fmtNum(st.messages_total) + ' messages');
    // What wears an SD card: bytes written and journal commits a second
    // (the last minute), and a day's writes at that rate.
    setStat('disk_rate', fmtBytes(st.disk_write_bytes_per_second) + '/s');
    setSub('disk_rate', `≈ ${fmtBytes(st.disk_write_bytes_per_day_estimate)}/day · ${fmtNum(st.journal_commits_per_second)} commits/s`);
    setStat('uptime', fmtDur(st.uptime_seconds));
    setSub('version', st.version || '');
    for (const k of ['decode_errors_total', 'late_total', 'dropped_total', 'evicted_total',
      'expression_errors_total', 'duplicates_total', 'outbox_dropped_total', 'set_aside_total',
      'alerts_trimmed_total', 'journal_length', 'devices']) {
      const warn = k.endsWith('_total') && k !== 'duplicates_total' && st[k] > 0;
      setStat(k, fmtNum(st[k]), warn ? 'warn' : '');
    }
    const problems = [];
    if (st.degraded) problems.push(['bad', `Degraded: the journal cannot be written (disk full?). QoS 1 messages are not acknowledged (devices keep them); ${fmtNum(st.journal_dropped_total)} QoS 0 message(s) dropped.`]);
    if (!st.broker_connected) problems.push(['bad', 'Not connected to the MQTT broker.']);
    if (!st.upstream_connected) problems.push(['warn', `Upstream disconnected: ${st.outbox_depth} alert(s) wait in the outbox.`]);
    if (st.checkpoint_error) problems.push(['bad', 'Checkpoint failed: ' + st.checkpoint_error]);
    if (st.fleet && st.fleet.rules_state === 'rejected') problems.push(['warn', `Last pushed rule bundle rejected: ${st.fleet.rules_errors.join('; ')}. Running: ${st.fleet.rules_version || 'local rule files only'}.`]);
    if (st.reload_errors.length) problems.push(['warn', `Last rule reload failed (${st.reload_errors.length} error(s)); the previous rules keep running. See Rules.`]);
    if (st.last_error) problems.push(['warn', 'Last error: ' + st.last_error]);
    problems.unshift(...guardProblems(st));
    $('#problems').replaceChildren(...problems.map(([c, t]) => el('div', { class: c, text: t })));
    const h = problems.some((p) => p[0] === 'bad') ? 'bad' : problems.length ? 'warn' : 'ok';
    $('#health').dataset.health = h;
    $('#health').textContent = { ok: 'healthy', warn: 'attention', bad: 'unhealthy' }[h];
    renderReloadErrors(st.reload_errors);
  }

  // ---- alerts ----------------------------------------------------------------
  const recent = []; // newest first, for the overview list and chart markers
  const RECENT_MAX = 1000;
  function rememberAlert(a, front) {
    if (recent.some((r) => r.id === a.id && r.state === a.state)) return false;
    if (front) recent.unshift(a); else recent.push(a);
    if (recent.length > RECENT_MAX) recent.length = RECENT_MAX;
    return true;
  }
  function alertItem(a, fresh) {
    const vals = Object.entries(a.values || {}).map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v) : fmtNum(v)}`).join('  ');
    return el('li', {
      class: `alert sev-${a.severity} state-${a.state}${fresh ? ' fresh' : ''}`,
      'data-id': a.id, 'data-rule': a.rule, 'data-key': a.key, 'data-severity': a.severity, 'data-state': a.state,
    },
    el('span', { class: 'sev', text: a.severity }),
    el('span', { class: 'state', text: a.state }),
    el('span', { class: 'rule', text: a.rule }),
    el('time', { class: 'time', datetime: a.time, text: fmtTime(a.time) }),
    el('span', { class: 'key', text: 'key: ' + a.key }),
    a.message ? el('span', { class: 'message', text: a.message }) : null,
    vals ? el('span', { class: 'values', text: vals }) : null);
  }
  function renderRecent() {
    $('#recent-alerts').replaceChildren(...recent.slice(0, 5).map((a) => alertItem(a)));
  }

  let filter = {};
  let nextBefore = 0;
  function readFilter() {
    const f = new FormData($('#alert-filters'));
    const out = {};
    for (const [k, v] of f.entries()) {
      if (!v) continue;
      out[k] = (k === 'since' || k === 'until') ? new Date(v).toISOString() : v.trim();
    }
    return out;
  }
  function matches(a) {
    if (filter.rule && a.rule !== filter.rule) return false;
    if (filter.key && a.key !== filter.key) return false;
    if (filter.severity && a.severity !== filter.severity) return false;
    if (filter.state && a.state !== filter.state) return false;
    if (filter.since && Date.parse(a.time) < Date.parse(filter.since)) return false;
    if (filter.until) return false; // a bounded query is history: live alerts do not join it
    return true;
  }
  async function loadAlerts(more) {
    const q = new URLSearchParams(filter);
    q.set('limit', '100');
    if (more && nextBefore) q.set('before', String(nextBefore));
    try {
      const body = await api('/api/alerts?' + q);
      $('#alerts-error').hidden = true;
      const items = body.alerts.map((a) => alertItem(a));
      if (more) $('#alerts').append(...items); else $('#alerts').replaceChildren(...items);
      nextBefore = body.next_before || 0;
      $('#alerts-more').hidden = !nextBefore;
    } catch (e) {
      if (e.status === 401) return;
      $('#alerts-error').textContent = 'Could not load alerts: ' + e.message;
      $('#alerts-error').hidden = false;
    }
  }
  $('#alert-filters').addEventListener('submit', (e) => { e.preventDefault(); filter = readFilter(); loadAlerts(false); });
  $('#alert-filters').addEventListener('reset', () => { setTimeout(() => { filter = {}; loadAlerts(false); }); });
  $('#alerts-more').addEventListener('click', () => loadAlerts(true));

  function onAlert(a) {
    if (!rememberAlert(a, true)) return;
    renderRecent();
    if (matches(a)) {
      const list = $('#alerts');
      list.prepend(alertItem(a, true));
      while (list.children.length > 500) list.lastElementChild.remove();
    }
    const d = devices.get(deviceOfAlert(a));
    if (d) d.card.classList.toggle('alerting', a.state === 'firing');
    if (selected) drawChart();
  }
  async function loadRecentAlerts() {
    try {
      const since = new Date(Date.now() - WINDOW_MS).toISOString();
      const body = await api('/api/alerts?limit=500&since=' + encodeURIComponent(since));
      for (const a of body.alerts) rememberAlert(a, false);
      recent.sort((x, y) => (x.time < y.time ? 1 : x.time > y.time ? -1 : 0));
      renderRecent();
    } catch (e) { /* shown by the next status */ }
  }

  // ---- devices -----------------------------------------------------------------
  // key -> {dev, series: Map(field -> [[ms, v, min, max]]), card}; min and
  // max are those of the readings a point stands for, so a spike between
  // two points is never hidden.
  const devices = new Map();
  let selected = '';
  // The field named by the topic's last level (sensors/pump1/temperature)
  // comes first: it is what the device is about.
  function numericFields(d) {
    const last = (d.dev.topic || '').split('/').pop();
    return [...d.series.keys()].sort((a, b) => (b === last) - (a === last) || (a < b ? -1 : a > b ? 1 : 0));
  }
  function deviceCard(key) {
    const card = el('div', { class: 'device', 'data-device': key },
      el('div', { class: 'dname', text: key }),
      el('div', { class: 'topic' }),
      svgEl('svg'),
      el('dl', { class: 'fields' }),
      el('div', { class: 'seen' }));
    const spark = card.querySelector('svg');
    spark.setAttribute('class', 'spark');
    spark.setAttribute('viewBox', '0 0 100 30');
    spark.setAttribute('preserveAspectRatio', 'none');
    card.addEventListener('click', () => select(key));
    return card;
  }
  function upsertDevice(dev) {
    let d = devices.get(dev.key);
    if (!d) {
      d = { dev, series: new Map(), card: deviceCard(dev.key) };
      devices.set(dev.key, d);
      const list = $('#devices');
      const after = [...list.children].find((c) => c.dataset.device > dev.key);
      list.insertBefore(d.card, after || null);
      $('#devices-empty').hidden = true;
    }
    d.dev = dev;
    const ms = Date.parse(dev.last_seen);
    for (const [k, v] of Object.entries(dev.values)) {
      if (typeof v !== 'number' || TIME_FIELDS.has(k.toLowerCase())) continue;
      let s = d.series.get(k);
      if (!s) { s = []; d.series.set(k, s); }
      if (!s.length || ms > s[s.length - 1][0]) s.push([ms, v, v, v]);
      while (s.length && s[0][0] < ms - WINDOW_MS) s.shift();
    }
    renderDevice(d);
    return d;
  }
  function renderDevice(d) {
    const { dev, card } = d;
    // The key is often the topic itself; then the topic line repeats it.
    $('.topic', card).textContent = dev.topic === dev.key ? '' : dev.topic;
    $('.seen', card).textContent = 'seen ' + fmtClock(dev.last_seen);
    const dl = $('dl', card);
    const keys = Object.keys(dev.values).sort();
    const rows = keys.map((k) => {
      const v = dev.values[k];
      const stamp = TIME_FIELDS.has(k.toLowerCase()) ? fmtStamp(v) : null;
      return el('div', { class: 'field', 'data-field': k },
        el('dt', { text: k }),
        el('dd', { class: 'value', text: stamp !== null ? stamp : typeof v === 'object' && v !== null ? JSON.stringify(v) : fmtNum(v) }));
    });
    dl.replaceChildren(...rows);
    const f = numericFields(d)[0];
    drawLine($('svg.spark', card), f ? d.series.get(f) : [], 100, 30, 2);
    if (selected === dev.key) drawChart();
  }
  // drawLine draws a field's points and, where a point stands for several
  // readings, a bar from their least to their greatest; extra values (an
  // alert's point and band) widen the scale so they are on the chart too.
  function drawLine(svg, pts, w, h, pad, extra = []) {
    if (!pts || pts.length < 2) { svg.replaceChildren(); return null; }
    const t0 = pts[0][0], t1 = pts[pts.length - 1][0];
    let lo = Infinity, hi = -Infinity;
    for (const [, v, mn = v, mx = v] of pts) { lo = Math.min(lo, v, mn); hi = Math.max(hi, v, mx); }
    for (const v of extra) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (hi === lo) { hi += 1; lo -= 1; }
    const x = (t) => ((t - t0) / Math.max(1, t1 - t0)) * w;
    const y = (v) => pad + (1 - (v - lo) / (hi - lo)) * (h - 2 * pad);
    const line = svgEl('polyline', { class: 'line', points: pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ') });
    const kids = [line];
    for (const [t, v, mn = v, mx = v] of pts) {
      if (mn < mx) kids.push(svgEl('line', { class: 'range', x1: x(t), x2: x(t), y1: y(mx), y2: y(mn) }));
    }
    svg.replaceChildren(...kids);
    return { x, y, lo, hi, t0, t1 };
  }
  // An alert belongs to a device when its key is the device's key or one
  // level of its topic (rules often key by a {device} capture of the topic).
  function deviceOfAlert(a) {
    if (devices.has(a.key)) return a.key;
    for (const [k, d] of devices) if ((d.dev.topic || '').split('/').includes(a.key)) return k;
    return '';
  }
  function select(key) {
    selected = key;
    for (const c of $$('.device')) c.classList.toggle('selected', c.dataset.device === key);
    $('#device-detail').hidden = false;
    $('#detail-key').textContent = key;
    const d = devices.get(key);
    const sel = $('#chart-field');
    const fields = numericFields(d);
    const keep = fields.includes(sel.value) ? sel.value : fields[0];
    sel.replaceChildren(...fields.map((f) => el('option', { value: f, text: f })));
    if (keep) sel.value = keep;
    drawChart();
    // On a phone the chart sits below the cards: bring it into view.
    const r = $('#device-detail').getBoundingClientRect();
    if (r.top < 0 || r.bottom > window.innerHeight) $('#device-detail').scrollIntoView({ block: 'start' });
  }
  $('#chart-field').addEventListener('change', () => drawChart());
  window.addEventListener('resize', () => { if (selected) drawChart(); });
  $('#detail-close').addEventListener('click', () => {
    selected = '';
    $('#device-detail').hidden = true;
    for (const c of $$('.device.selected')) c.classList.remove('selected');
  });
  function drawChart() {
    const d = devices.get(selected);
    const svg = $('#chart');
    if (!d) return;
    // Draw in pixels so labels are not stretched with the chart.
    const W = Math.max(200, Math.round(svg.getBoundingClientRect().width) || 600), H = 220, padL = 0;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    const pts = d.series.get($('#chart-field').value) || [];
    // Detector alerts of this device in view carry the point that fired and
    // the band of normal values around what was expected.
    const inView = pts.length > 1 ? recent.filter((a) => {
      const t = Date.parse(a.time);
      return t >= pts[0][0] && t <= pts[pts.length - 1][0] && deviceOfAlert(a) === selected;
    }) : [];
    // Their value is the rule's field, which the alert does not name: draw
    // them on the device's own field (the topic's last level) only.
    const own = $('#chart-field').value === numericFields(d)[0];
    const det = own ? inView.filter((a) => a.values && Number.isFinite(a.values.low) && Number.isFinite(a.values.high)) : [];
    const g = drawLine(svg, pts, W, H, 18, det.flatMap((a) => [a.values.value, a.values.low, a.values.high]));
    if (!g) { $('#chart-legend').textContent = 'Waiting for numeric values…'; return; }
    let bands = 0;
    for (const a of det) {
      if (a.state !== 'firing') continue;
      // The band holds from the firing to its resolution (or the chart's
      // end): the first resolved of its rule and key after it in alert
      // order (det is newest first), not by time: a detector that resolves
      // and fires again at one point (a sensor stuck while firing) has a
      // resolution at the renewed firing's own time, which ends the one
      // before it.
      const t = Date.parse(a.time);
      let res = null;
      for (let j = det.indexOf(a) - 1; j >= 0; j--) {
        const r = det[j];
        if (r.state === 'resolved' && r.rule === a.rule && r.key === a.key) { res = r; break; }
      }
      const x1 = g.x(t), x2 = Math.max(x1 + 3, g.x(res ? Date.parse(res.time) : g.t1));
      const band = svgEl('rect', { class: 'band', 'data-rule': a.rule, x: x1, width: x2 - x1,
        y: g.y(a.values.high), height: Math.max(1, g.y(a.values.low) - g.y(a.values.high)) });
      const bt = svgEl('title'); bt.textContent = `${a.rule}: expected ${fmtNum(a.values.expected)}, normal ${fmtNum(a.values.low)} to ${fmtNum(a.values.high)}`;
      band.append(bt);
      svg.prepend(band);
      bands++;
    }
    for (const a of det) {
      if (!Number.isFinite(a.values.value)) continue;
      const c = svgEl('circle', { class: `alert-point sev-${a.severity} state-${a.state}`, 'data-rule': a.rule,
        cx: g.x(Date.parse(a.time)), cy: g.y(a.values.value), r: 4 });
      const ct = svgEl('title'); ct.textContent = `${a.rule} ${a.state}: ${a.values.reason || fmtNum(a.values.value)}`;
      c.append(ct);
      svg.append(c);
    }
    svg.prepend(svgEl('line', { class: 'axis', x1: padL, y1: H - 18, x2: W, y2: H - 18 }));
    const label = (x, y, text, anchor) => { const t = svgEl('text', { x, y, 'text-anchor': anchor || 'start' }); t.textContent = text; svg.append(t); };
    label(2, 12, fmtNum(g.hi)); label(2, H - 22, fmtNum(g.lo));
    label(2, H - 4, fmtClock(g.t0)); label(W - 2, H - 4, fmtClock(g.t1), 'end');
    let n = 0;
    for (const a of inView) {
      const t = Date.parse(a.time);
      const m = svgEl('line', { class: `marker sev-${a.severity} state-${a.state}`, 'data-rule': a.rule,
        x1: g.x(t), x2: g.x(t), y1: 0, y2: H - 18 });
      const title = svgEl('title'); title.textContent = `${a.rule} ${a.state} ${fmtClock(a.time)}: ${a.message || ''}`;
      m.append(title);
      svg.append(m);
      n++;
    }
    $('#chart-legend').textContent = `${pts.length} points, last 10 minutes (bars: the range within a point); ` +
      `${n} alert marker(s) (dashed lines, dots at the value that fired; hover for details)` +
      (bands ? `; shaded: the expected band while firing` : '');
  }
  async function loadDevices() {
    try {
      const body = await api('/api/devices');
      for (const dev of body.devices) upsertDevice(dev);
      // Fill the charts' recent history; a phone does not need all at once.
      for (const dev of body.devices.slice(0, 100)) {
        const s = await api(`/api/devices/${encodeURIComponent(dev.key)}/series`);
        const d = devices.get(dev.key);
        const byField = new Map();
        for (const p of s.points) {
          if (!byField.has(p.field)) byField.set(p.field, []);
          byField.get(p.field).push([Date.parse(p.t), p.value, p.min ?? p.value, p.max ?? p.value]);
        }
        for (const [f, pts] of byField) {
          const live = (d.series.get(f) || []).filter(([t]) => t > pts[pts.length - 1][0]);
          d.series.set(f, pts.concat(live));
        }
        renderDevice(d);
      }
    } catch (e) { /* the live feed fills in */ }
  }

  // ---- rules -------------------------------------------------------------------
  function renderReloadErrors(errs) {
    $('#reload-errors').replaceChildren(...(errs || []).map((e) => el('li', { text: e })));
    $('#reload-errors-title').hidden = !(errs && errs.length);
  }
  async function loadRules() {
    try {
      const body = await api('/api/rules');
      const sel = $('#alert-filters select[name=rule]');
      const cur = sel.value;
      sel.replaceChildren(el('option', { value: '', text: 'all' }), ...body.rules.map((r) => el('option', { value: r.name, text: r.name })));
      sel.value = cur;
      $('#rules tbody').replaceChildren(...body.rules.map((r) => el('tr', { 'data-rule': r.name },
        el('td', { text: r.name }),
        el('td', { text: r.kind }),
        el('td', { text: (r.origin === 'bundle' ? 'bundle ' + r.bundle_version + ': ' : '') + r.file + (r.line ? ':' + r.line : ''),
          title: r.origin === 'bundle' ? 'pushed to the fleet (vigil push)' : 'local rule file' }),
        el('td', { class: 'num', text: fmtNum(r.events_total) }),
        el('td', { class: 'num', text: fmtNum(r.alerts_total) }),
        el('td', { class: 'num', text: fmtNum(r.errors_total) }),
        el('td', { class: 'num', text: fmtNum(r.keys) }),
        el('td', { class: 'num', text: fmtNum(r.late_total) }),
        el('td', { class: 'num', text: fmtNum(r.evicted_total) }),
        el('td', { class: 'err', text: r.disabled ? 'disabled: ' + r.disabled : r.last_error || '' }))));
      renderReloadErrors(body.reload_errors);
    } catch (e) { /* retried on the next visit */ }
  }
  $('#reload').addEventListener('click', async () => {
    const out = $('#reload-result');
    out.textContent = 'reloading…';
    try {
      await api('/api/reload', { method: 'POST' });
      out.textContent = 'reloaded at ' + new Date().toLocaleTimeString();
      renderReloadErrors([]);
    } catch (e) {
      out.textContent = e.status === 422 ? 'reload failed; the previous rules keep running' : 'reload refused: ' + e.message;
      if (e.body && e.body.errors) renderReloadErrors(e.body.errors);
    }
    loadRules();
  });
  setInterval(() => { if (!$('#tab-rules').hidden) loadRules(); }, 5000);

  // ---- guard: limits hit, alerts set aside, damaged state --------------------
  // Banners for what the gateway set aside to keep going, and the list of
  // alerts upstream refused with their retry buttons.
  let deadShown = -1;
  function guardProblems(st) {
    const out = [];
    if (st.state_recovered_to) {
      out.push(['bad', `The state database was damaged and set aside as ${st.state_recovered_to}; vigil started with empty state (undelivered alerts and window state of before were lost).`]);
    }
    if (st.dead_letters > 0) out.push(['warn', `${st.dead_letters} alert(s) upstream refused are set aside; the alerts behind them flow. See below.`]);
    if (st.rules_disabled > 0) out.push(['warn', `${st.rules_disabled} rule(s) disabled: an expression went over its budget. See Rules; fix and reload.`]);
    if ((st.dead_letters || 0) !== deadShown) loadDeadLetters();
    return out;
  }
  async function loadDeadLetters() {
    try {
      const body = await api('/api/dead-letters');
      const dls = body.dead_letters || [];
      deadShown = dls.length;
      $('#dead-letters').hidden = dls.length === 0;
      $('#dead-table tbody').replaceChildren(...dls.map((d) => el('tr', { 'data-id': d.id },
        el('td', { text: fmtStamp(d.set_aside_at) }),
        el('td', { text: d.rule }),
        el('td', { text: d.key }),
        el('td', { text: d.severity }),
        el('td', { text: fmtStamp(d.time) }),
        el('td', { class: 'num', text: fmtNum(d.attempts) }),
        el('td', { class: 'err', text: d.reason }),
        el('td', {}, retryButton([d.id], 'Send again')))));
    } catch (e) { /* retried on the next status */ }
  }
  function retryButton(ids, label) {
    const b = el('button', { type: 'button', text: label });
    b.addEventListener('click', () => retryDead(ids));
    return b;
  }
  async function retryDead(ids) {
    const out = $('#dead-result');
    try {
      const r = await api('/api/dead-letters/retry', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ids }) });
      out.textContent = `${r.retried} alert(s) back in the outbox`;
    } catch (e) {
      out.textContent = 'retry refused: ' + e.message;
    }
    loadDeadLetters();
  }
  $('#dead-retry-all').addEventListener('click', () => retryDead([]));

  // ---- live feed: SSE read with fetch, so the token travels as a header ------
  let lastEventId = '';
  const handlers = {
    status: onStatus,
    alert: onAlert,
    reading: (d) => upsertDevice(d),
    resync: () => { loadAlerts(false); loadRecentAlerts(); },
  };
  function dispatch(frame) {
    let name = 'message', data = '', id = null;
    for (const line of frame.split('\n')) {
      if (!line || line[0] === ':') continue;
      const c = line.indexOf(':');
      const f = c < 0 ? line : line.slice(0, c);
      let v = c < 0 ? '' : line.slice(c + 1);
      if (v[0] === ' ') v = v.slice(1);
      if (f === 'event') name = v; else if (f === 'data') data += (data ? '\n' : '') + v; else if (f === 'id') id = v;
    }
    if (id !== null) lastEventId = id;
    if (!data || !handlers[name]) return;
    try { handlers[name](JSON.parse(data)); } catch (e) { console.error('vigil: bad', name, e); }
  }
  function setConn(state, text) {
    $('#conn').dataset.state = state;
    $('#conn').textContent = text || state;
  }
  async function stream() {
    for (let attempt = 0; ; attempt++) {
      try {
        const h = authHeaders({ Accept: 'text/event-stream' });
        if (lastEventId) h['Last-Event-ID'] = lastEventId;
        const r = await fetch('/api/events', { headers: h, cache: 'no-store' });
        if (r.status === 401) { showLogin(); return; }
        if (!r.ok || !r.body) throw new Error('HTTP ' + r.status);
        setConn('live');
        attempt = 0;
        const rd = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await rd.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            dispatch(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (e) { /* fall through to the retry */ }
      setConn('offline', 'reconnecting');
      await sleep(Math.min(15000, 1000 * 2 ** Math.min(attempt, 4)));
    }
  }

  // ---- start -------------------------------------------------------------------
  async function start() {
    showTab();
    try {
      onStatus(await api('/api/status'));
    } catch (e) {
      if (e.status === 401) return;
    }
    loadRules();
    await loadRecentAlerts();
    loadAlerts(false);
    stream();
    loadDevices();
  }
  start();
})();
