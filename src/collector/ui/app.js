// pprof-controller UI: targets, explorer (timeline, flame graph, top table), compare, dashboard.
// No dependencies. Profiles, function names and labels are untrusted: they reach the page only
// through textContent, attribute values set with setAttribute, and canvas fillText — never HTML.
'use strict';

const $ = (sel, el = document) => el.querySelector(sel);

function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) el.append(kid instanceof Node ? kid : String(kid));
  return el;
}

async function api(path, params) {
  const qs = params ? '?' + new URLSearchParams(params).toString() : '';
  const r = await fetch(path + qs);
  const body = await r.json().catch(() => ({ status: 'error', error: `HTTP ${r.status}` }));
  if (body.status !== 'success') throw new Error(body.error || `HTTP ${r.status}`);
  return body.data;
}

// ---- units ------------------------------------------------------------------------------------
function fmt(v, unit) {
  const a = Math.abs(v);
  const scale = (steps) => {
    let i = 0;
    while (i + 1 < steps.length && a >= steps[i + 1][1]) i++;
    const x = v / steps[i][1];
    return (Math.abs(x) >= 100 || Number.isInteger(x) ? x.toFixed(0) : x.toFixed(2)) + steps[i][0];
  };
  if (unit === 'bytes') return scale([['B', 1], ['kB', 1024], ['MB', 1024 ** 2], ['GB', 1024 ** 3], ['TB', 1024 ** 4]]);
  if (unit === 'nanoseconds') return scale([['ns', 1], ['µs', 1e3], ['ms', 1e6], ['s', 1e9], ['min', 60e9], ['h', 3600e9]]);
  return scale([['', 1], ['k', 1e3], ['M', 1e6], ['G', 1e9]]);
}
const pct = (v, t) => (t ? (100 * v / t).toFixed(2) : '0.00') + '%';
const ago = (ns) => (ns ? Math.max(0, Math.round(Date.now() / 1000 - ns / 1e9)) + 's ago' : 'never');
const tstr = (ns) => new Date(ns / 1e6).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');

// ---- URL state: the whole view lives in the query string ---------------------------------------
const state = () => Object.fromEntries(new URLSearchParams(location.search));
function setState(patch, push) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(patch)) (v === '' || v === null || v === undefined) ? q.delete(k) : q.set(k, v);
  const url = location.pathname + (q.toString() ? '?' + q : '');
  push ? history.pushState(null, '', url) : history.replaceState(null, '', url);
}
// API parameters of the current view: the selection (labels, type, sample, range, agg)
const VIEW_ONLY = new Set(['search', 'focus', 'norm', 'range', 'base_range']);
function apiParams(st) {
  const p = {};
  for (const [k, v] of Object.entries(st)) if (!VIEW_ONLY.has(k)) p[k] = v;
  return p;
}
const RANGES = { '15m': 900, '1h': 3600, '6h': 21600, '24h': 86400, '7d': 604800, all: 0 };
function resolveRange(st) {
  // explicit from/to win; else a preset relative to now
  if (st.from || st.to) return {};
  const secs = RANGES[st.range || 'all'];
  return secs ? { from: (Date.now() / 1000 - secs).toFixed(3) } : {};
}

// ---- flame graph (icicle on a canvas; stays smooth with 100k+ nodes) ---------------------------
class Flame {
  constructor(canvas, opts = {}) {
    this.c = canvas;
    this.rowH = opts.rowH || 18;
    this.mini = !!opts.mini;
    this.onFocus = opts.onFocus || (() => {});
    this.zoom = 0;
    this.search = '';
    if (!this.mini) {
      // keyboard: arrows move the zoom (down: biggest child, up: parent, left/right: siblings),
      // Escape resets
      canvas.tabIndex = 0;
      canvas.addEventListener('keydown', (e) => this.key(e));
      canvas.addEventListener('click', (e) => this.click(e));
      canvas.addEventListener('mousemove', (e) => this.hover(e));
      canvas.addEventListener('mouseleave', () => tip(null));
    }
  }
  setData(d, diff, norm) {
    const n = d.nodes.length;
    this.d = d;
    this.diff = diff;
    this.parent = new Int32Array(n);
    this.width = new Float64Array(n);
    this.depth = new Int32Array(n);
    this.kids = Array.from({ length: n }, () => []);
    const scale = diff && norm && d.baseTotal ? d.total / d.baseTotal : 1;
    this.scale = scale;
    let maxDepth = 0;
    for (let i = 0; i < n; i++) {
      const r = d.nodes[i];
      this.parent[i] = r[1];
      this.width[i] = Math.abs(r[3]) + (diff ? Math.abs(r[5] * scale) : 0);
      if (r[1] >= 0) { this.kids[r[1]].push(i); this.depth[i] = this.depth[r[1]] + 1; }
      if (this.depth[i] > maxDepth) maxDepth = this.depth[i];
    }
    this.maxDepth = maxDepth;
    this.zoom = 0;
    this.draw();
  }
  name(i) { return this.d.names[this.d.nodes[i][0]]; }
  layout() {
    // x in [0,1] relative to the zoomed node; ancestors of the zoom span the full width
    const n = this.d.nodes.length, x = new Float64Array(n), w = new Float64Array(n);
    const z = this.zoom;
    for (let a = z; a >= 0; a = this.parent[a]) { x[a] = 0; w[a] = 1; if (a === 0) break; }
    const stack = [z];
    while (stack.length) {
      const p = stack.pop();
      let off = x[p];
      const pw = this.width[p] || 1;
      for (const k of this.kids[p]) {
        w[k] = w[p] * this.width[k] / pw;
        x[k] = off;
        off += w[k];
        stack.push(k);
      }
    }
    return { x, w };
  }
  color(i, dim) {
    if (this.diff) {
      const r = this.d.nodes[i], c = r[3], b = r[5] * this.scale, t = Math.abs(c) + Math.abs(b);
      const d = t ? (c - b) / t : 0;
      const a = Math.min(1, Math.abs(d) * 1.5);
      return d >= 0 ? `rgba(214,39,40,${0.15 + 0.85 * a})` : `rgba(44,160,44,${0.15 + 0.85 * a})`;
    }
    let hsh = 0;
    const s = this.name(i);
    for (let k = 0; k < s.length; k++) hsh = (hsh * 31 + s.charCodeAt(k)) | 0;
    const hue = 10 + (Math.abs(hsh) % 45), light = 55 + (Math.abs(hsh >> 8) % 15);
    return dim ? `hsl(${hue},15%,88%)` : `hsl(${hue},85%,${light}%)`;
  }
  draw() {
    if (!this.d) return;
    const t0 = performance.now();
    const dpr = window.devicePixelRatio || 1, cssW = this.c.clientWidth || 800;
    const rows = Math.min(this.maxDepth + 1, this.mini ? 5 : 400);
    const cssH = rows * this.rowH;
    this.c.style.height = cssH + 'px';
    this.c.width = Math.round(cssW * dpr);
    this.c.height = Math.round(cssH * dpr);
    const g = this.c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, cssW, cssH);
    g.font = '12px system-ui, sans-serif';
    g.textBaseline = 'middle';
    const { x, w } = this.layout();
    this.geom = { x, w, cssW };
    const term = this.search.toLowerCase();
    let matched = 0;
    const n = this.d.nodes.length;
    for (let i = 0; i < n; i++) {
      const px = w[i] * cssW;
      if (px < 0.5 || this.depth[i] >= rows) continue; // too narrow to see: skipped, not laid out
      const hit = term && this.name(i).toLowerCase().includes(term);
      const X = x[i] * cssW, Y = this.depth[i] * this.rowH;
      g.fillStyle = this.color(i, term && !hit);
      g.fillRect(X, Y, Math.max(px - 0.5, 0.5), this.rowH - 1);
      if (hit) { g.strokeStyle = '#7a1fa2'; g.lineWidth = 1.5; g.strokeRect(X + 0.75, Y + 0.75, Math.max(px - 2, 0.5), this.rowH - 2.5); }
      if (px > 24 && !this.mini) {
        const label = i === 0 ? 'all' : this.name(i);
        g.fillStyle = '#1d2330';
        const max = Math.floor((px - 6) / 6.5);
        g.fillText(label.length > max ? label.slice(0, Math.max(max - 1, 1)) + '…' : label, X + 3, Y + this.rowH / 2);
      }
    }
    if (term) {
      // share of the samples whose stacks contain a match (counted once per path)
      const shareNode = (i) => {
        if (this.name(i).toLowerCase().includes(term)) return Math.abs(this.d.nodes[i][3]);
        let s = 0;
        for (const k of this.kids[i]) s += shareNode(k);
        return s;
      };
      matched = shareNode(0);
    }
    this.matched = matched;
    // draw times, for the browser benchmark (tests/ui/bench_flame.mjs)
    (window.__flameDraws = window.__flameDraws || []).push(performance.now() - t0);
    if (window.__firstDrawEnd === undefined) window.__firstDrawEnd = performance.now(); // ms since navigation
  }
  at(e) {
    const r = this.c.getBoundingClientRect(), mx = e.clientX - r.left, my = e.clientY - r.top;
    const depth = Math.floor(my / this.rowH);
    const { x, w, cssW } = this.geom;
    for (let i = 0; i < this.d.nodes.length; i++)
      if (this.depth[i] === depth && w[i] * cssW >= 0.5 && mx >= x[i] * cssW && mx < (x[i] + w[i]) * cssW) return i;
    return -1;
  }
  click(e) {
    const i = this.at(e);
    if (i < 0) return;
    this.zoom = i === this.zoom ? Math.max(this.parent[i], 0) : i;
    this.draw();
    this.onFocus(i === 0 ? '' : this.name(this.zoom));
  }
  key(e) {
    const z = this.zoom, p = this.parent[z];
    let next = -1;
    if (e.key === 'ArrowDown') next = this.kids[z].reduce((b, k) => (b < 0 || this.width[k] > this.width[b] ? k : b), -1);
    else if (e.key === 'ArrowUp') next = z ? p : -1;
    else if ((e.key === 'ArrowLeft' || e.key === 'ArrowRight') && z) {
      const sib = this.kids[p], i = sib.indexOf(z) + (e.key === 'ArrowRight' ? 1 : -1);
      if (i >= 0 && i < sib.length) next = sib[i];
    } else if (e.key === 'Escape') next = 0;
    if (next < 0) return;
    e.preventDefault();
    this.zoom = next;
    this.draw();
    this.onFocus(next === 0 ? '' : this.name(next));
  }
  focusName(name) {
    // zoom to the biggest node of that function
    let best = -1;
    for (let i = 0; i < this.d.nodes.length; i++)
      if (this.name(i) === name && (best < 0 || this.width[i] > this.width[best])) best = i;
    if (best >= 0) { this.zoom = best; this.draw(); }
    return best;
  }
  hover(e) {
    const i = this.at(e);
    if (i < 0) return tip(null);
    const r = this.d.nodes[i], unit = this.d.sampleType.unit, root = this.d.nodes[0];
    let text = `${i === 0 ? 'all' : this.name(i)}\ntotal ${fmt(r[3], unit)} (${pct(r[3], root[3])})\nself ${fmt(r[2], unit)} (${pct(r[2], root[3])})`;
    if (this.zoom && i !== this.zoom) text += `\n${pct(r[3], this.d.nodes[this.zoom][3])} of the zoomed frame`;
    if (this.diff) text += `\nbase total ${fmt(r[5], unit)}, self ${fmt(r[4], unit)}\nchange ${fmt(r[3] - r[5] * this.scale, unit)}`;
    const hidden = r[3] - r[2] - this.kids[i].reduce((s, k) => s + this.d.nodes[k][3], 0);
    if (hidden > 0 && Math.abs(hidden) >= Math.abs(r[3]) * 0.001) text += `\n(${fmt(hidden, unit)} in frames pruned from view)`;
    tip(text, e);
  }
}

function tip(text, e) {
  const t = $('#tooltip');
  if (!text) { t.hidden = true; return; }
  t.textContent = text;
  t.hidden = false;
  t.style.left = Math.min(e.clientX + 12, window.innerWidth - 540) + 'px';
  t.style.top = e.clientY + 14 + 'px';
}

// ---- timeline (totals per scrape; drag to select a range) ----------------------------------------
function drawTimeline(canvas, series, unit, onSelect) {
  const dpr = window.devicePixelRatio || 1, W = canvas.clientWidth || 800, H = 90;
  canvas.width = W * dpr;
  canvas.height = H * dpr;
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  // one bar per scrape time, summed over series (every pod of a service)
  // points of rollups (where tiered retention deleted the raw profiles) carry their width as a
  // 4th element ("10m", "1h") and their value is the mean per profile, so the curve keeps its scale
  const sums = new Map();
  let coarse = '';
  for (const s of series) for (const [start, end, v, res] of s.points) {
    sums.set(end, (sums.get(end) || 0) + v);
    if (res && (coarse === '' || res === '1h')) coarse = res;
  }
  canvas.dataset.resolution = coarse || 'raw';
  const pts = [...sums.entries()].sort((a, b) => a[0] - b[0]);
  canvas.dataset.points = String(pts.length);
  if (!pts.length) { g.fillStyle = '#667085'; g.fillText('no data in this range', 10, 45); return; }
  const t0 = pts[0][0], t1 = pts[pts.length - 1][0] || t0 + 1, span = Math.max(t1 - t0, 1);
  const vmax = Math.max(...pts.map((p) => Math.abs(p[1])), 1);
  const X = (t) => 6 + (W - 12) * (t - t0) / span;
  g.strokeStyle = '#2458d3';
  g.lineWidth = 1.5;
  g.beginPath();
  pts.forEach(([t, v], k) => { const y = H - 14 - (H - 24) * Math.abs(v) / vmax; k ? g.lineTo(X(t), y) : g.moveTo(X(t), y); });
  g.stroke();
  g.fillStyle = '#667085';
  g.font = '11px system-ui, sans-serif';
  g.fillText(tstr(t0), 6, H - 3);
  g.fillText(`max ${fmt(vmax, unit)}`, W - 120, 10);
  if (coarse) g.fillText(`older points: ${coarse} rollups (raw profiles past their retention)`, 6, 10);
  let down = null;
  canvas.onmousedown = (e) => { down = e.offsetX; };
  canvas.onmouseup = (e) => {
    if (down === null) return;
    const a = Math.min(down, e.offsetX), b = Math.max(down, e.offsetX);
    down = null;
    if (b - a < 3) return;
    const T = (px) => t0 + span * (px - 6) / (W - 12);
    onSelect(Math.floor(T(a)), Math.ceil(T(b)));
  };
}

// ---- pages -------------------------------------------------------------------------------------
const app = () => $('#app');

async function pageTargets() {
  const st = state();
  const filter = h('input', { type: 'search', placeholder: 'filter: namespace, service, target, type', value: st.filter || '', 'aria-label': 'filter targets' });
  const body = h('tbody');
  app().replaceChildren(h('h1', { text: 'Targets' }), h('div', { class: 'controls' }, filter),
    h('table', { id: 'targets' }, h('thead', {}, h('tr', {}, ...['Namespace', 'Service', 'Target', 'Type', 'Health', 'Last scrape', 'Duration', 'Last error'].map((t) => h('th', { text: t })))), body));
  let data = [];
  const collapsed = new Set(); // "ns" or "ns\u0000svc" groups folded by the user
  const toggle = (key) => { collapsed.has(key) ? collapsed.delete(key) : collapsed.add(key); render(); };
  const groupRow = (key, label, count, level) => h('tr', { class: 'group' }, h('td', { colspan: 8 },
    h('button', { class: 'fold', 'aria-expanded': String(!collapsed.has(key)), 'data-group': label,
      onclick: () => toggle(key) }, `${collapsed.has(key) ? '▸' : '▾'} ${level ? '  ' : ''}${label} (${count})`)));
  const render = () => {
    const f = filter.value.toLowerCase();
    setState({ filter: filter.value });
    const rows = data.map((t) => ({ t, ns: t.labels.__k8s_namespace || '—', svc: t.labels.__k8s_name || t.monitor }))
      .filter(({ t, ns, svc }) => !f || [ns, svc, t.monitor, t.type].some((s) => s.toLowerCase().includes(f)))
      .sort((a, b) => a.ns.localeCompare(b.ns) || a.svc.localeCompare(b.svc) || a.t.monitor.localeCompare(b.t.monitor) || a.t.type.localeCompare(b.t.type));
    // namespace -> service -> target, each level foldable
    const out = [];
    let ns = null, svc = null;
    for (const { t, ns: n, svc: sv } of rows) {
      if (n !== ns) {
        ns = n;
        svc = null;
        out.push(groupRow(n, n, rows.filter((r) => r.ns === n).length, 0));
      }
      if (collapsed.has(n)) continue;
      const sk = n + '\u0000' + sv;
      if (sv !== svc) {
        svc = sv;
        out.push(groupRow(sk, sv, rows.filter((r) => r.ns === n && r.svc === sv).length, 1));
      }
      if (collapsed.has(sk)) continue;
      out.push(h('tr', { class: 'clickable target', tabindex: 0, 'data-monitor': t.monitor,
        onclick: () => go('/explorer', { name: t.monitor, type: t.type }), onkeydown: (e) => e.key === 'Enter' && go('/explorer', { name: t.monitor, type: t.type }) },
        h('td', { text: n }), h('td', { text: sv }), h('td', { text: t.monitor }), h('td', { text: t.type }),
        h('td', { class: t.health, text: t.health + (t.busy ? ' (busy)' : '') }), h('td', { text: ago(t.lastScrapeUnixNano) }),
        h('td', { class: 'num', text: t.lastScrapeDurationMs + ' ms' }), h('td', { class: 'err', text: t.lastError })));
    }
    body.replaceChildren(...out);
  };
  filter.addEventListener('input', render);
  const load = async () => { data = await api('/api/v1/targets'); render(); };
  await load();
  const timer = setInterval(() => (location.pathname === '/targets' || location.pathname === '/') ? load().catch(() => {}) : clearInterval(timer), 5000);
}

// the selection controls shared by explorer and compare
async function selectionControls(st, onChange) {
  const series = await api('/api/v1/series');
  const targets = [...new Set(series.map((s) => s.labels.monitor))].sort();
  const services = [...new Set(series.filter((s) => s.labels.__k8s_name).map((s) => `${s.labels.__k8s_namespace || ''}/${s.labels.__k8s_name}`))].sort();
  const cur = st.name ? `t:${st.name}` : st.__k8s_name ? `s:${st.__k8s_namespace || ''}/${st.__k8s_name}` : '';
  const sel = h('select', { 'aria-label': 'target or service', id: 'selection' },
    h('option', { value: '', text: '— pick a target or service —' }),
    h('optgroup', { label: 'Targets' }, ...targets.map((t) => h('option', { value: `t:${t}`, text: t, selected: cur === `t:${t}` }))),
    h('optgroup', { label: 'Services (all pods)' }, ...services.map((s) => h('option', { value: `s:${s}`, text: s, selected: cur === `s:${s}` }))));
  const types = ['cpu', 'heap', 'allocs', 'block', 'mutex', 'goroutine', 'threadcreate'];
  const type = h('select', { 'aria-label': 'profile type', id: 'type' }, ...types.map((t) => h('option', { value: t, text: t, selected: (st.type || 'cpu') === t })));
  const agg = h('select', { 'aria-label': 'aggregation', id: 'agg' }, ...['', 'sum', 'avg', 'latest'].map((a) => h('option', { value: a, text: a || 'default aggregation', selected: (st.agg || '') === a })));
  sel.onchange = () => {
    const v = sel.value, patch = { name: '', __k8s_namespace: '', __k8s_name: '', focus: '' };
    if (v.startsWith('t:')) patch.name = v.slice(2);
    if (v.startsWith('s:')) { const [ns, svc] = v.slice(2).split('/'); patch.__k8s_namespace = ns; patch.__k8s_name = svc; }
    onChange(patch);
  };
  type.onchange = () => onChange({ type: type.value, sample: '', focus: '' });
  agg.onchange = () => onChange({ agg: agg.value });
  return { sel, type, agg };
}

function rangeControls(st, prefix, onChange) {
  const key = prefix ? prefix + 'range' : 'range';
  const presets = h('select', { 'aria-label': prefix ? 'base range' : 'time range', id: key },
    ...Object.keys(RANGES).map((r) => h('option', { value: r, text: r === 'all' ? 'all stored' : 'last ' + r, selected: (st[key] || 'all') === r })));
  presets.onchange = () => onChange({ [key]: presets.value, [prefix + 'from']: '', [prefix + 'to']: '' });
  const from = st[prefix + 'from'], to = st[prefix + 'to'];
  const custom = (from || to) ? h('span', { class: 'muted', text: `custom: ${from ? tstr(+from * 1e9) : '…'} → ${to ? tstr(+to * 1e9) : 'now'}` }) : null;
  const clear = (from || to) ? h('button', { text: 'clear range', onclick: () => onChange({ [prefix + 'from']: '', [prefix + 'to']: '' }) }) : null;
  return [presets, custom, clear];
}

function goCommand(params) {
  return `go tool pprof '${location.origin}/api/v1/profile?${new URLSearchParams(params)}'`;
}

function topTable(d, unit, onPick, diff) {
  const cols = diff
    ? [['name', 'Function', false], ['baseFlat', 'Base flat', true], ['flat', 'Flat', true], ['delta', 'Δ flat', true], ['cum', 'Cum', true]]
    : [['name', 'Function', false], ['flat', 'Flat', true], ['flatp', 'Flat%', true], ['sum', 'Sum%', true], ['cum', 'Cum', true], ['cump', 'Cum%', true]];
  let key = diff ? 'delta' : 'flat', desc = true;
  const rows = d.top.map((r) => ({ ...r, delta: r.flat - (r.baseFlat || 0), flatp: r.flat, cump: r.cum }));
  const body = h('tbody');
  const head = h('tr', {}, ...cols.map(([k, label, num]) => h('th', { class: 'sortable' + (num ? ' num' : ''), tabindex: 0, 'data-key': k, text: label,
    onclick: () => { desc = key === k ? !desc : true; key = k; render(); }, onkeydown: (e) => e.key === 'Enter' && e.target.click() })));
  const render = () => {
    rows.sort((a, b) => {
      const x = key === 'name' ? a.name.localeCompare(b.name) : (diff && key === 'delta' ? Math.abs(a.delta) - Math.abs(b.delta) : a[key] - b[key]);
      return desc ? -x : x;
    });
    let sum = 0;
    body.replaceChildren(...rows.map((r) => {
      sum += r.flat;
      const cells = diff
        ? [h('td', { text: r.name }), h('td', { class: 'num', text: fmt(r.baseFlat || 0, unit) }), h('td', { class: 'num', text: fmt(r.flat, unit) }),
           h('td', { class: 'num ' + (r.delta > 0 ? 'down' : 'up'), text: (r.delta > 0 ? '+' : '') + fmt(r.delta, unit) }), h('td', { class: 'num', text: fmt(r.cum, unit) })]
        : [h('td', { text: r.name }), h('td', { class: 'num', text: fmt(r.flat, unit) }), h('td', { class: 'num', text: pct(r.flat, d.total) }),
           h('td', { class: 'num', text: pct(sum, d.total) }), h('td', { class: 'num', text: fmt(r.cum, unit) }), h('td', { class: 'num', text: pct(r.cum, d.total) })];
      return h('tr', { class: 'clickable', tabindex: 0, onclick: () => onPick(r.name), onkeydown: (e) => e.key === 'Enter' && onPick(r.name) }, ...cells);
    }));
  };
  render();
  return h('div', { class: 'tablewrap' }, h('table', { id: 'top' }, h('thead', {}, head), body));
}

async function pageExplorer(compare) {
  const st = state();
  const rerender = (patch) => { setState(patch); route(); };
  const { sel, type, agg } = await selectionControls(st, rerender);
  const hasSel = st.name || st.__k8s_name;
  const controls = h('div', { class: 'controls' }, sel, type, agg);
  const rangeRow = h('div', { class: 'controls' });
  if (compare) {
    rangeRow.append(h('label', { text: 'base' }), ...rangeControls(st, 'base_', rerender).filter(Boolean),
      h('label', { text: 'vs comparison' }), ...rangeControls(st, '', rerender).filter(Boolean),
      h('label', {}, h('input', { type: 'checkbox', id: 'norm', checked: st.norm === '1', onchange: (e) => rerender({ norm: e.target.checked ? '1' : '' }) }), ' normalise'));
  } else {
    rangeRow.append(h('label', { text: 'range' }), ...rangeControls(st, '', rerender).filter(Boolean));
  }
  const page = [h('h1', { text: compare ? 'Compare' : 'Explorer' }), controls, rangeRow];
  if (!hasSel) { app().replaceChildren(...page, h('p', { class: 'muted', text: 'Pick a target or a service.' })); return; }
  const params = apiParams({ ...st, ...resolveRange(st) });
  if (compare) {
    // the base defaults to the window before the comparison's
    const bsecs = RANGES[st.base_range || st.range || '1h'] || 3600;
    if (!st.base_from && !st.base_to) {
      const to = params.from ? +params.from : Date.now() / 1000 - bsecs;
      params.base_to = to.toFixed(3);
      params.base_from = (to - bsecs).toFixed(3);
      if (!params.from) params.from = to.toFixed(3);
    }
    for (const k of ['base_range', 'range']) delete params[k];
  }
  app().replaceChildren(...page, h('p', { text: 'Loading…' }));
  let d;
  try {
    d = await api('/api/v1/render', { ...params, max_nodes: 100000, top: 2000 });
  } catch (e) {
    app().replaceChildren(...page, h('p', { class: 'err', id: 'error', text: e.message }));
    return;
  }
  const unit = d.sampleType.unit;
  const sample = h('select', { 'aria-label': 'sample type', id: 'sample' }, ...d.sampleTypes.map((s) => h('option', { value: s.type, text: `${s.type} (${s.unit})`, selected: s.type === d.sampleType.type })));
  sample.onchange = () => rerender({ sample: sample.value, focus: '' });
  controls.append(sample);
  const search = h('input', { type: 'search', id: 'search', placeholder: 'search functions (regexp-free substring)', value: st.search || '', 'aria-label': 'search' });
  const share = h('span', { class: 'muted', id: 'share' });
  const dlParams = { ...params };
  delete dlParams.sample;
  const download = h('a', { href: '/api/v1/profile?' + new URLSearchParams(dlParams), id: 'download', download: '' }, 'Download pprof');
  const cmd = h('span', { class: 'cmd', id: 'command', text: goCommand(dlParams) });
  const copy = h('button', { text: 'Copy go tool pprof command', id: 'copy', onclick: async () => {
    try { await navigator.clipboard.writeText(cmd.textContent); copy.textContent = 'Copied'; } catch { copy.textContent = 'Select the command to copy'; }
  } });
  const reset = h('button', { text: 'Reset zoom', id: 'reset' });
  const tl = h('canvas', { id: 'timeline', 'aria-label': 'timeline of totals: drag to select a range' });
  const canvas = h('canvas', { id: 'flame', 'aria-label': 'flame graph' });
  const summary = h('p', { class: 'muted', id: 'summary', text:
    `${d.profiles} profiles, total ${fmt(d.total, unit)}` + (d.baseTotal !== undefined ? `; base ${d.baseProfiles} profiles, total ${fmt(d.baseTotal, unit)}` : '') +
    (d.pruned.nodes ? `; showing the ${d.pruned.kept} largest of ${d.pruned.kept + d.pruned.nodes} frames` : '') +
    (d.resolution && d.resolution !== 'raw' ? `; resolution ${d.resolution}: answered from rollups where the raw profiles are past their retention` : '') });
  summary.dataset.resolution = d.resolution || 'raw';
  const legend = compare ? h('p', { class: 'legend' }, h('span', { class: 'grew' }), 'grew', h('span', { class: 'shrank' }), 'shrank') : null;
  const flame = new Flame(canvas, { onFocus: (name) => setState({ focus: name }) });
  const table = topTable(d, unit, (name) => { flame.focusName(name); setState({ focus: name }); canvas.scrollIntoView({ block: 'nearest' }); }, compare);
  // (replaceChildren would print a null as the text "null")
  app().replaceChildren(...[...page, h('div', { class: 'controls' }, search, share, reset, download, copy), h('div', { class: 'controls' }, cmd),
    compare ? null : tl, summary, legend, h('div', { class: 'split' }, h('div', {}, canvas), table)].filter(Boolean));
  flame.setData(d, compare, st.norm === '1');
  const applySearch = () => {
    flame.search = search.value;
    flame.draw();
    share.textContent = search.value ? `matches: ${pct(flame.matched, Math.abs(d.nodes[0][3]))} of total` : '';
    setState({ search: search.value });
  };
  search.addEventListener('input', applySearch);
  if (st.search) applySearch();
  if (st.focus) flame.focusName(st.focus);
  reset.onclick = () => { flame.zoom = 0; flame.draw(); setState({ focus: '' }); };
  window.onresize = () => flame.draw();
  if (!compare) {
    const tparams = { ...params, sample: d.sampleType.type };
    api('/api/v1/timeline', tparams).then((series) => drawTimeline(tl, series, unit,
      (a, b) => rerender({ from: (a / 1e9).toFixed(3), to: (b / 1e9).toFixed(3), range: '' }))).catch(() => {});
  }
}

async function pageDashboard() {
  app().replaceChildren(h('h1', { text: 'Dashboard' }), h('p', { text: 'Loading…' }));
  const series = await api('/api/v1/series');
  const groups = new Map();
  for (const s of series) {
    const key = s.labels.__k8s_name ? `${s.labels.__k8s_namespace || ''}/${s.labels.__k8s_name}` : s.labels.monitor;
    if (!groups.has(key)) groups.set(key, { labels: s.labels, types: new Set() });
    groups.get(key).types.add(s.profileType);
  }
  const cards = h('div', { class: 'cards', id: 'cards' });
  app().replaceChildren(h('h1', { text: 'Dashboard' }), h('p', { class: 'muted', text: 'Latest profile of each type, per service; click to explore.' }), cards);
  for (const [key, g] of [...groups.entries()].sort()) {
    const sel = g.labels.__k8s_name ? { __k8s_namespace: g.labels.__k8s_namespace || '', __k8s_name: g.labels.__k8s_name } : { name: g.labels.monitor };
    const card = h('div', { class: 'card' }, h('h2', { text: key }));
    cards.append(card);
    for (const t of [...g.types].sort()) {
      const c = h('canvas', { 'aria-label': `${key} ${t}` });
      const row = h('div', { class: 'clickable', tabindex: 0, onclick: () => go('/explorer', { ...sel, type: t }), onkeydown: (e) => e.key === 'Enter' && go('/explorer', { ...sel, type: t }) },
        h('div', { class: 'muted', text: t }), c);
      card.append(row);
      api('/api/v1/render', { ...sel, type: t, agg: 'latest', max_nodes: 400, top: 1 })
        .then((d) => new Flame(c, { mini: true, rowH: 12 }).setData(d, false))
        .catch((e) => row.append(h('span', { class: 'err', text: e.message })));
    }
  }
}

// ---- router ------------------------------------------------------------------------------------
function go(path, params) {
  history.pushState(null, '', path + (params ? '?' + new URLSearchParams(params) : ''));
  route();
}

async function route() {
  tip(null);
  const p = location.pathname;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', p === a.getAttribute('href') || (p === '/' && a.dataset.nav === 'targets'));
  try {
    if (p === '/explorer') await pageExplorer(false);
    else if (p === '/compare') await pageExplorer(true);
    else if (p === '/dashboard') await pageDashboard();
    else await pageTargets();
  } catch (e) {
    app().replaceChildren(h('p', { class: 'err', id: 'error', text: e.message }));
  }
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('nav a');
  if (a) { e.preventDefault(); go(a.getAttribute('href')); }
});
window.addEventListener('popstate', route);
route();
