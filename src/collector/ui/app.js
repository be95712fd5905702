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
  // an array value is a repeated parameter (tag=..&tag=..)
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) for (const x of Array.isArray(v) ? v : [v]) q.append(k, x);
  const qs = params ? '?' + q.toString() : '';
  const r = await fetch(path + qs);
  const body = await r.json().catch(() => ({ status: 'error', error: `HTTP ${r.status}` }));
  if (body.status !== 'success') throw new Error(body.error || `HTTP ${r.status}`);
  return body.data;
}

// /api/v1/render in its binary encoding (docs/api.md): the JSON part as api() gives it, with
// each node list as columns over the answer's bytes ({length, name, parent, self, total, and
// with a base bself, btotal}, typed arrays). JSON.parse of 100k [name, parent, self, total]
// arrays took Chromium longer than the server took to compute them; views cost nothing.
async function apiRender(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) q.append(k, x);
  q.set('encoding', 'binary');
  const r = await fetch('/api/v1/render?' + q.toString());
  if (!(r.headers.get('content-type') || '').startsWith('application/vnd.pprof-controller.render')) {
    const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
    throw new Error(body.error || `HTTP ${r.status}`);
  }
  const buf = await r.arrayBuffer(), dv = new DataView(buf);
  const bad = () => new Error('render: an answer this page cannot read (reload the page)');
  // "PPRB", version 1, the JSON's length: uint32 each, little-endian
  if (buf.byteLength < 12 || dv.getUint32(0, true) !== 0x42525050 || dv.getUint32(4, true) !== 1) throw bad();
  const jl = dv.getUint32(8, true);
  if (12 + jl > buf.byteLength) throw bad();
  const body = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 12, jl)));
  if (body.status !== 'success') throw new Error(body.error || 'render failed');
  const base = (12 + jl + 7) & ~7; // the blocks start 8-aligned (their doubles need it)
  const cols = (o) => {
    // values as doubles, or (scale) as int32 that the scale multiplies: made doubles here once
    const n = o.count, at = base + o.offset, vb = o.scale ? 4 : 8;
    if (!(n >= 0 && (o.values === 2 || o.values === 4) && o.offset % 8 === 0 && at + n * (8 + vb * o.values) <= buf.byteLength)) throw bad();
    const v = (k) => {
      if (!o.scale) return new Float64Array(buf, at + 8 * n + 8 * n * k, n);
      const q = new Int32Array(buf, at + 8 * n + 4 * n * k, n), out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = q[i] * o.scale;
      return out;
    };
    return { length: n, name: new Int32Array(buf, at, n), parent: new Int32Array(buf, at + 4 * n, n),
      self: v(0), total: v(1), bself: o.values === 4 ? v(2) : null, btotal: o.values === 4 ? v(3) : null };
  };
  const d = body.data;
  d.nodes = cols(d.nodes);
  if (d.focus) for (const t of [d.focus.callers, d.focus.callees]) t.nodes = cols(t.nodes);
  return d;
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
// (tag=, the sample-label filters, repeats: st.tag is an array, [] when absent)
const state = () => {
  const q = new URLSearchParams(location.search);
  return { ...Object.fromEntries(q), tag: q.getAll('tag') };
};
function setState(patch, push) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(patch)) {
    q.delete(k);
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (!(v === '' || v === null || v === undefined)) q.set(k, v);
  }
  const url = location.pathname + (q.toString() ? '?' + q : '');
  push ? history.pushState(null, '', url) : history.replaceState(null, '', url);
}
// API parameters of the current view: the selection (labels, type, sample, range, agg)
const VIEW_ONLY = new Set(['search', 'focus', 'norm', 'range', 'base_range', 'layout', 'table', 'sort', 'asc', 'split', 'profile', 'profile_at', 'nodefault', 'fn', 'fnby']);
function apiParams(st) {
  const p = {};
  for (const [k, v] of Object.entries(st)) if (!VIEW_ONLY.has(k) && !(Array.isArray(v) && !v.length)) p[k] = v;
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
    this.flip = !!opts.flip; // flame graph (root at the bottom) instead of icicle (root on top)
    this.maxRows = opts.maxRows || 400;
    this.rootName = opts.rootName || 'all';
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
    // One pass over the answer's node columns (apiRender; parent and name used as they come)
    // into typed arrays: 100k nodes as 100k small arrays of children (an older layout) cost
    // more in allocation and GC than the rest of the draw.
    const c = d.nodes, n = c.length;
    this.d = d;
    this.diff = diff;
    const parent = this.parent = c.parent, width = this.width = new Float64Array(n);
    const depth = this.depth = new Int32Array(n);
    this.nameIx = c.name;
    const scale = diff && norm && d.baseTotal ? d.total / d.baseTotal : 1;
    this.scale = scale;
    // children as one array (kidList[kidStart[i] .. kidStart[i + 1]), in node order): parents
    // come before children, so counting, then filling in node order keeps the API's order
    const kidStart = this.kidStart = new Int32Array(n + 1), kidList = this.kidList = new Int32Array(Math.max(n - 1, 0));
    const dshare = this.dshare = diff ? new Float64Array(n) : null;
    let maxDepth = 0, m = 0;
    for (let i = 0; i < n; i++) {
      const pa = parent[i];
      width[i] = Math.abs(c.total[i]) + (diff ? Math.abs(c.btotal[i] * scale) : 0);
      if (pa >= 0) { kidStart[pa + 1]++; const dp = depth[i] = depth[pa] + 1; if (dp > maxDepth) maxDepth = dp; }
      if (diff) {
        // diff colours: the change of each frame's share of its profile's total, comparison minus
        // base; saturation by that change relative to the largest one
        const ds = dshare[i] = (d.total ? c.total[i] / d.total : 0) - (d.baseTotal ? c.btotal[i] / d.baseTotal : 0);
        if (Math.abs(ds) > m) m = Math.abs(ds);
      }
    }
    for (let i = 0; i < n; i++) kidStart[i + 1] += kidStart[i];
    const fill = kidStart.slice(0, n);
    for (let i = 1; i < n; i++) if (parent[i] >= 0) kidList[fill[parent[i]]++] = i;
    // what a frame's children share: its own width, or their sum where that is larger. A
    // sandwich's trees count a stack once under each occurrence of a function that calls itself
    // through others (f > g > f > h: g and h are both f's callees), as go tool pprof counts
    // edges, so a frame's children may add up to more than it; they are then shrunk to fit it
    // in proportion (overflow: how many frames that happened to) instead of running off the edge
    const span = this.span = Float64Array.from(width);
    const kidSum = new Float64Array(n);
    for (let i = 1; i < n; i++) if (parent[i] >= 0) kidSum[parent[i]] += width[i];
    let overflow = 0;
    for (let i = 0; i < n; i++) if (kidSum[i] > width[i]) { span[i] = kidSum[i]; overflow++; }
    this.overflow = overflow;
    this.maxDepth = maxDepth;
    this.maxDshare = m;
    this.colours = [new Map(), new Map()]; // fill styles made so far (color)
    this.zoom = 0;
    this.draw();
  }
  kids(i) { return this.kidList.subarray(this.kidStart[i], this.kidStart[i + 1]); }
  name(i) { return this.d.names[this.nameIx[i]]; }
  rowY(depth) { return (this.flip ? this.rows - 1 - depth : depth) * this.rowH; }
  layout() {
    // x in [0,1] relative to the zoomed node; ancestors of the zoom span the full width
    const n = this.d.nodes.length, x = new Float64Array(n), w = new Float64Array(n);
    const z = this.zoom;
    for (let a = z; a >= 0; a = this.parent[a]) { x[a] = 0; w[a] = 1; if (a === 0) break; }
    const stack = [z];
    const width = this.width, ks = this.kidStart, kl = this.kidList;
    while (stack.length) {
      const p = stack.pop();
      let off = x[p];
      const pw = this.span[p] || 1, f = w[p] / pw;
      for (let j = ks[p], e = ks[p + 1]; j < e; j++) {
        const k = kl[j];
        w[k] = f * width[k];
        x[k] = off;
        off += w[k];
        stack.push(k);
      }
    }
    return { x, w };
  }
  // a diff frame's colour: red grew, green shrank, saturation and lightness by its change of
  // share relative to the largest change (the square root: small changes stay visible); null
  // for a frame whose share did not change
  tone(i) {
    const d = this.dshare[i];
    if (d === 0 || !this.maxDshare) return null;
    const a = Math.sqrt(Math.abs(d) / this.maxDshare);
    return { hue: d > 0 ? 0 : 130, sat: Math.round(25 + 65 * a), light: Math.round(86 - 34 * a) };
  }
  color(i, dim) {
    // the same few hundred strings for 100k frames: each made once (per name, or per diff
    // colour) and reused; the dimmed variants (search misses) in a map of their own
    let key, t = null;
    if (this.diff) {
      t = this.tone(i);
      key = t ? (t.hue ? -1 : 1) * (1 + 1000 * t.sat + t.light) : 0;
    } else key = this.nameIx[i];
    const cache = this.colours[dim ? 1 : 0];
    let c = cache.get(key);
    if (c === undefined) { c = this.colorOf(i, dim, t); cache.set(key, c); }
    return c;
  }
  colorOf(i, dim, t) {
    if (this.diff) {
      if (!t) return dim ? '#eef0f3' : '#d0d5dd';
      return dim ? `hsl(${t.hue},25%,92%)` : `hsl(${t.hue},${t.sat}%,${t.light}%)`;
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
    const rows = Math.min(this.maxDepth + 1, this.mini ? 5 : this.maxRows);
    const cssH = rows * this.rowH;
    this.rows = rows;
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
      const X = x[i] * cssW, Y = this.rowY(this.depth[i]);
      g.fillStyle = this.color(i, term && !hit);
      g.fillRect(X, Y, Math.max(px - 0.5, 0.5), this.rowH - 1);
      if (hit) { g.strokeStyle = '#7a1fa2'; g.lineWidth = 1.5; g.strokeRect(X + 0.75, Y + 0.75, Math.max(px - 2, 0.5), this.rowH - 2.5); }
      if (px > 24 && !this.mini) {
        const label = i === 0 ? this.rootName : this.name(i);
        g.fillStyle = '#1d2330';
        const max = Math.floor((px - 6) / 6.5);
        g.fillText(label.length > max ? label.slice(0, Math.max(max - 1, 1)) + '…' : label, X + 3, Y + this.rowH / 2);
      }
    }
    if (term) {
      // share of the samples whose stacks contain a match (counted once per path)
      const shareNode = (i) => {
        if (this.name(i).toLowerCase().includes(term)) return Math.abs(this.d.nodes.total[i]);
        let s = 0;
        for (const k of this.kids(i)) s += shareNode(k);
        return s;
      };
      matched = shareNode(0);
    }
    this.matched = matched;
    // draw times, for the browser benchmark (tests/ui/bench_flame.mjs)
    (window.__flameDraws = window.__flameDraws || []).push(performance.now() - t0);
    (window.__drawEnds = window.__drawEnds || []).push(performance.now()); // ms since navigation
    if (window.__firstDrawEnd === undefined) window.__firstDrawEnd = performance.now(); // ms since navigation
  }
  at(e) {
    const r = this.c.getBoundingClientRect(), mx = e.clientX - r.left, my = e.clientY - r.top;
    const row = Math.floor(my / this.rowH), depth = this.flip ? this.rows - 1 - row : row;
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
    if (e.key === 'ArrowDown') next = this.kids(z).reduce((b, k) => (b < 0 || this.width[k] > this.width[b] ? k : b), -1);
    else if (e.key === 'ArrowUp') next = z ? p : -1;
    else if ((e.key === 'ArrowLeft' || e.key === 'ArrowRight') && z) {
      const sib = this.kids(p), i = sib.indexOf(z) + (e.key === 'ArrowRight' ? 1 : -1);
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
    const c = this.d.nodes, unit = this.d.sampleType.unit, tot = c.total[i], self = c.self[i], root = c.total[0];
    let text = `${i === 0 ? this.rootName : this.name(i)}\ntotal ${fmt(tot, unit)} (${pct(tot, root)})\nself ${fmt(self, unit)} (${pct(self, root)})`;
    if (this.zoom && i !== this.zoom) text += `\n${pct(tot, c.total[this.zoom])} of the zoomed frame`;
    if (this.diff) {
      const bt = this.d.baseTotal, ds = this.dshare[i] * 100, btot = c.btotal[i], bself = c.bself[i];
      text += `\nbase total ${fmt(btot, unit)} (${pct(btot, bt)}), self ${fmt(bself, unit)} (${pct(bself, bt)})` +
        `\nshare of total ${pct(btot, bt)} → ${pct(tot, this.d.total)} (${ds > 0 ? '+' : ''}${ds.toFixed(2)} points)` +
        `\nchange ${fmt(tot - btot * this.scale, unit)}`;
    }
    const hidden = tot - self - this.kids(i).reduce((s, k) => s + c.total[k], 0);
    if (hidden > 0 && Math.abs(hidden) >= Math.abs(tot) * 0.001) text += `\n(${fmt(hidden, unit)} in frames pruned from view)`;
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

// ---- timeline (totals per scrape, summed over the selection's series) ---------------------------
// Axes: time (UTC) below, value in the sample's unit on the left. Hover shows the nearest
// point's time and value; a drag selects a range (onSelect(fromNs, toNs)); a click on a point
// opens that one profile (onPick(point)).
const TL = { H: 130, L: 64, R: 12, T: 10, B: 22 };
const GROUP_COLOURS = ['#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2', '#7f7f7f'];
function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw || 1)), f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
function timeLabel(sec, step, span) {
  const s = new Date(sec * 1000).toISOString();
  if (span >= 86400) return s.slice(5, 10) + ' ' + s.slice(11, 16);
  return step >= 60 ? s.slice(11, 16) : s.slice(11, 19);
}
function timelinePoints(series) {
  // one point per end time: the sum over series (every pod of a service), with the records it
  // is made of (timeline entries carry `ids` aligned with `points` once the API has them).
  // Points of rollups (where tiered retention deleted the raw profiles) carry their width as a
  // 4th element ("10m", "1h") and their value is the mean per profile, so the curve keeps its scale
  const by = new Map(), groups = new Map();
  let coarse = '';
  for (const s of series) s.points.forEach(([start, end, v, res], k) => {
    if (s.tag) {
      // group_by: one line per label value (summed over the series that have it)
      const gv = Object.values(s.tag)[0], gm = groups.get(gv) || new Map();
      gm.set(end, (gm.get(end) || 0) + v);
      groups.set(gv, gm);
    }
    const p = by.get(end) || { end, v: 0, recs: [], res: '' };
    p.v += v;
    p.recs.push({ labels: s.labels, id: s.ids ? s.ids[k] : undefined, peer: s.peer, start, v });
    if (res) { p.res = res; if (coarse === '' || res === '1h') coarse = res; }
    by.set(end, p);
  });
  return { pts: [...by.values()].sort((a, b) => a.end - b.end), coarse, groups };
}
function drawTimeline(canvas, series, unit, onSelect, onPick) {
  const dpr = window.devicePixelRatio || 1, W = canvas.clientWidth || 800, { H, L, R, T, B } = TL;
  const { pts, coarse, groups } = timelinePoints(series);
  canvas.dataset.resolution = coarse || 'raw';
  canvas.dataset.points = String(pts.length);
  const g = canvas.getContext('2d');
  const setup = () => {
    canvas.width = W * dpr;
    canvas.height = H * dpr;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, W, H);
    g.font = '11px system-ui, sans-serif';
  };
  setup();
  if (!pts.length) { g.fillStyle = '#667085'; g.fillText('no data in this range', L, 45); return; }
  // a single point gets a span of a minute around it, so it is drawn in the middle
  const t0 = pts.length > 1 ? pts[0].end : pts[0].end - 30e9, t1 = pts.length > 1 ? pts[pts.length - 1].end : pts[0].end + 30e9;
  const span = Math.max(t1 - t0, 1);
  const vmax = Math.max(...pts.map((p) => Math.abs(p.v)), 1);
  const ystep = niceStep(vmax / 3), ymax = Math.ceil(vmax / ystep) * ystep;
  const X = (t) => L + (W - L - R) * (t - t0) / span, Y = (v) => T + (H - T - B) * (1 - Math.abs(v) / ymax);
  const yticks = [];
  for (let v = 0; v <= ymax + ystep / 2; v += ystep) yticks.push(v);
  canvas.dataset.ymax = String(ymax);
  canvas.dataset.yticks = yticks.map((v) => fmt(v, unit)).join('|');
  const secs = span / 1e9, tstep = TIME_STEPS.find((s) => secs / s <= Math.max(2, (W - L - R) / 110)) || 604800;
  const paint = (hi) => {
    setup();
    g.strokeStyle = '#e4e7ec';
    g.fillStyle = '#667085';
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const v of yticks) {
      const y = Math.round(Y(v)) + 0.5;
      g.beginPath(); g.moveTo(L, y); g.lineTo(W - R, y); g.stroke();
      g.fillText(fmt(v, unit), L - 6, y);
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (let s = Math.ceil(t0 / 1e9 / tstep) * tstep; s * 1e9 <= t1; s += tstep) {
      const x = Math.round(X(s * 1e9)) + 0.5;
      g.beginPath(); g.moveTo(x, T); g.lineTo(x, H - B + 3); g.stroke();
      g.fillText(timeLabel(s, tstep, secs), x, H - B + 5);
    }
    g.strokeStyle = '#2458d3';
    g.lineWidth = 1.5;
    g.beginPath();
    pts.forEach((p, k) => (k ? g.lineTo(X(p.end), Y(p.v)) : g.moveTo(X(p.end), Y(p.v))));
    g.stroke();
    let gi = 0;
    for (const [, gm] of groups) {
      const gp = [...gm.entries()].sort((a, b) => a[0] - b[0]);
      g.strokeStyle = GROUP_COLOURS[gi++ % GROUP_COLOURS.length];
      g.lineWidth = 1;
      g.beginPath();
      gp.forEach(([t, v], k) => (k ? g.lineTo(X(t), Y(v)) : g.moveTo(X(t), Y(v))));
      g.stroke();
    }
    g.fillStyle = '#2458d3';
    if (pts.length <= (W - L - R) / 4) for (const p of pts) { g.beginPath(); g.arc(X(p.end), Y(p.v), 2, 0, 7); g.fill(); }
    if (coarse) { g.textAlign = 'left'; g.fillStyle = '#667085'; g.fillText(`older points: ${coarse} rollups (raw profiles past their retention)`, L + 4, 0); }
    if (hi) {
      g.strokeStyle = '#7a1fa2';
      g.beginPath(); g.moveTo(X(hi.end), T); g.lineTo(X(hi.end), H - B); g.stroke();
      g.fillStyle = '#7a1fa2';
      g.beginPath(); g.arc(X(hi.end), Y(hi.v), 4, 0, 7); g.fill();
    }
    if (sel) { g.fillStyle = 'rgba(36,88,211,0.15)'; g.fillRect(Math.min(sel[0], sel[1]), T, Math.abs(sel[1] - sel[0]), H - T - B); }
  };
  let sel = null, down = null;
  const nearest = (px) => {
    let best = null, bd = Infinity;
    for (const p of pts) { const dd = Math.abs(X(p.end) - px); if (dd < bd) { bd = dd; best = p; } }
    return bd <= 12 ? best : null;
  };
  paint(null);
  canvas.onmousedown = (e) => { down = e.offsetX; };
  canvas.onmousemove = (e) => {
    if (down !== null && Math.abs(e.offsetX - down) >= 3) { sel = [down, e.offsetX]; paint(null); tip(null); return; }
    const p = nearest(e.offsetX);
    paint(p);
    if (!p) return tip(null);
    const gtext = [...groups].map(([gv, gm]) => `\n  ${gv === '' ? '(none)' : gv}: ${fmt(gm.get(p.end) || 0, unit)}`).join('');
    tip(`${tstr(p.end)}\n${fmt(p.v, unit)}` + (p.recs.length > 1 ? ` (sum of ${p.recs.length} profiles)` : '') + gtext +
      (p.res ? `\n${p.res} rollup: mean per profile` : '\nclick: open this profile'), e);
  };
  canvas.onmouseleave = () => { down = null; sel = null; paint(null); tip(null); };
  canvas.onmouseup = (e) => {
    if (down === null) return;
    const a = Math.min(down, e.offsetX), b = Math.max(down, e.offsetX);
    down = null;
    sel = null;
    if (b - a < 3) {
      const p = nearest(e.offsetX);
      if (p && !p.res) onPick(p);
      return;
    }
    const Tm = (px) => t0 + span * (px - L) / (W - L - R);
    onSelect(Math.floor(Tm(a)), Math.ceil(Tm(b)));
  };
}

// Function over time: one function's self and total share of each point's total (function= on
// the timeline), as percentages; hover shows both. Summed: the selection's series added up per
// end time. Per pod: the timeline's entries are one per series, and a series is one pod (its
// `pod` label, else its target), so each pod gets its own pair of lines (total solid, self
// dashed) and hover lists each pod's point nearest the pointer. Pod names are untrusted: they
// reach the page as textContent (the legend) and the tooltip's text.
const podOf = (labels) => String(labels.pod ?? labels.monitor ?? '');
function functionLines(series, perPod) {
  const groups = new Map();
  for (const s of series) {
    const key = perPod ? podOf(s.labels) : '', by = groups.get(key) || new Map();
    groups.set(key, by);
    s.points.forEach(([, end, v], k) => {
      const p = by.get(end) || { end, total: 0, flat: 0, cum: 0, key };
      p.total += v; p.flat += s.flat ? s.flat[k] : 0; p.cum += s.cum ? s.cum[k] : 0;
      by.set(end, p);
    });
  }
  return [...groups].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([key, by]) => ({ key, pts: [...by.values()].sort((a, b) => a.end - b.end) }));
}
function drawFunctionTimeline(canvas, series, unit, perPod) {
  const dpr = window.devicePixelRatio || 1, W = canvas.clientWidth || 800, { H, L, R, T, B } = TL;
  const lines = functionLines(series, perPod);
  const pts = lines.flatMap((l) => l.pts).sort((a, b) => a.end - b.end);
  canvas.dataset.points = String(pts.length);
  canvas.dataset.lines = String(lines.length);
  const g = canvas.getContext('2d');
  canvas.width = W * dpr; canvas.height = H * dpr;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.font = '11px system-ui, sans-serif';
  if (!pts.length) { g.fillStyle = '#667085'; g.fillText('no data in this range', L, 45); return lines; }
  const share = (p, k) => (p.total ? Math.abs(p[k] / p.total) : 0);
  const smax = Math.max(...pts.map((p) => share(p, 'cum')), 0.0001);
  const ystep = niceStep(smax / 3), ymax = Math.ceil(smax / ystep) * ystep;
  const t0 = pts.length > 1 ? pts[0].end : pts[0].end - 30e9, t1 = pts.length > 1 ? pts[pts.length - 1].end : pts[0].end + 30e9;
  const X = (t) => L + (W - L - R) * (t - t0) / (t1 - t0 || 1), Y = (v) => T + (H - T - B) * (1 - v / ymax);
  const line = (lp, k, c, dash) => {
    g.strokeStyle = c; g.lineWidth = 1.5; g.setLineDash(dash); g.beginPath();
    lp.forEach((p, i) => (i ? g.lineTo(X(p.end), Y(share(p, k))) : g.moveTo(X(p.end), Y(share(p, k)))));
    g.stroke(); g.setLineDash([]);
  };
  const paint = (hi) => {
    g.clearRect(0, 0, W, H);
    g.strokeStyle = '#e4e7ec'; g.fillStyle = '#667085'; g.lineWidth = 1; g.textAlign = 'right'; g.textBaseline = 'middle';
    for (let v = 0; v <= ymax + ystep / 2; v += ystep) { const y = Math.round(Y(v)) + 0.5; g.beginPath(); g.moveTo(L, y); g.lineTo(W - R, y); g.stroke(); g.fillText((100 * v).toFixed(ystep < 0.01 ? 2 : 0) + '%', L - 6, y); }
    g.textAlign = 'left'; g.textBaseline = 'top';
    g.fillText(tstr(t0), L, H - B + 5);
    if (perPod) lines.forEach((l, i) => { const c = GROUP_COLOURS[i % GROUP_COLOURS.length]; line(l.pts, 'cum', c, []); line(l.pts, 'flat', c, [4, 3]); });
    else for (const [k, c] of [['cum', '#2458d3'], ['flat', '#d62728']]) line(pts, k, c, []);
    if (hi) { g.strokeStyle = '#7a1fa2'; g.beginPath(); g.moveTo(X(hi.end), T); g.lineTo(X(hi.end), H - B); g.stroke(); }
  };
  const nearest = (list, px) => {
    let best = null, bd = Infinity;
    for (const p of list) { const dd = Math.abs(X(p.end) - px); if (dd < bd) { bd = dd; best = p; } }
    return bd <= 12 ? best : null;
  };
  paint(null);
  canvas.onmousemove = (e) => {
    const best = nearest(pts, e.offsetX);
    if (!best) { paint(null); return tip(null); }
    paint(best);
    if (!perPod) {
      tip(`${tstr(best.end)}\nself ${(100 * share(best, 'flat')).toFixed(2)}% (${fmt(best.flat, unit)})\ntotal ${(100 * share(best, 'cum')).toFixed(2)}% (${fmt(best.cum, unit)})\nof ${fmt(best.total, unit)}`, e);
      return;
    }
    // each pod's own nearest point (pods are scraped at their own times)
    const rows = lines.map((l) => [l.key, nearest(l.pts, e.offsetX)]).filter(([, p]) => p)
      .map(([key, p]) => `\n${key}: self ${(100 * share(p, 'flat')).toFixed(2)}% (${fmt(p.flat, unit)}), total ${(100 * share(p, 'cum')).toFixed(2)}% (${fmt(p.cum, unit)}) of ${fmt(p.total, unit)}`);
    tip(tstr(best.end) + rows.join(''), e);
  };
  canvas.onmouseleave = () => { paint(null); tip(null); };
  return lines;
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
  // the selection's versions (the operator's `version` series label), oldest first by the time
  // each was first seen
  const first = new Map();
  for (const s of series) {
    const l = s.labels, v = l.version;
    if (v === undefined || !(st.name ? l.monitor === st.name : st.__k8s_name && l.__k8s_name === st.__k8s_name && (l.__k8s_namespace || '') === (st.__k8s_namespace || ''))) continue;
    first.set(v, Math.min(first.get(v) ?? Infinity, s.firstUnixNano));
  }
  const versions = [...first.keys()].sort((a, b) => first.get(a) - first.get(b) || (a < b ? -1 : 1));
  const version = versions.length ? h('select', { 'aria-label': 'version', id: 'version' }, h('option', { value: '', text: 'all versions' }),
    ...versions.map((v) => h('option', { value: v, text: 'version ' + v, selected: st.version === v }))) : null;
  if (version) version.onchange = () => onChange({ version: version.value });
  return { sel, type, agg, version, versions };
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

// The top table: sortable by every column (sort and direction kept in the URL as sort=KEY and
// asc=1); in compare, base and comparison side by side with the change of flat and of the
// share of the total (the diff flame graph's colour), sorted by the biggest change first.
function topTable(d, unit, onPick, diff, st = {}) {
  const cols = diff
    ? [['name', 'Function', false], ['baseFlat', 'Base flat', true], ['flat', 'Flat', true], ['delta', 'Δ flat', true], ['dshare', 'Δ share', true], ['cum', 'Cum', true]]
    : [['name', 'Function', false], ['flat', 'Flat', true], ['flatp', 'Flat%', true], ['sum', 'Sum%', true], ['cum', 'Cum', true], ['cump', 'Cum%', true]];
  let key = cols.some(([k]) => k === st.sort) ? st.sort : diff ? 'delta' : 'flat', desc = st.asc !== '1';
  const rows = d.top.map((r) => ({ ...r, delta: r.flat - (r.baseFlat || 0), flatp: r.flat, cump: r.cum }));
  for (const r of rows) r.dshare = (d.total ? r.flat / d.total : 0) - (d.baseTotal ? (r.baseFlat || 0) / d.baseTotal : 0);
  const body = h('tbody');
  const head = h('tr', {}, ...cols.map(([k, label, num]) => h('th', { class: 'sortable' + (num ? ' num' : ''), tabindex: 0, 'data-key': k, text: label,
    onclick: () => { desc = key === k ? !desc : true; key = k; setState({ sort: k, asc: desc ? '' : '1' }); render(); }, onkeydown: (e) => e.key === 'Enter' && e.target.click() })));
  const render = () => {
    for (const th of head.children) th.setAttribute('aria-sort', th.dataset.key === key ? (desc ? 'descending' : 'ascending') : 'none');
    rows.sort((a, b) => {
      const x = key === 'name' ? a.name.localeCompare(b.name) : (diff && (key === 'delta' || key === 'dshare') ? Math.abs(a[key]) - Math.abs(b[key]) : a[key] - b[key]);
      return desc ? -x : x;
    });
    let sum = 0;
    body.replaceChildren(...rows.map((r) => {
      sum += r.flat;
      const cells = diff
        ? [h('td', { class: 'fn', text: r.name }), h('td', { class: 'num', text: fmt(r.baseFlat || 0, unit) }), h('td', { class: 'num', text: fmt(r.flat, unit) }),
           h('td', { class: 'num ' + (r.delta > 0 ? 'down' : 'up'), text: (r.delta > 0 ? '+' : '') + fmt(r.delta, unit) }),
           h('td', { class: 'num ' + (r.dshare > 0 ? 'down' : 'up'), text: (r.dshare > 0 ? '+' : '') + (100 * r.dshare).toFixed(2) + '%' }), h('td', { class: 'num', text: fmt(r.cum, unit) })]
        : [h('td', { class: 'fn', text: r.name }), h('td', { class: 'num', text: fmt(r.flat, unit) }), h('td', { class: 'num', text: pct(r.flat, d.total) }),
           h('td', { class: 'num', text: pct(sum, d.total) }), h('td', { class: 'num', text: fmt(r.cum, unit) }), h('td', { class: 'num', text: pct(r.cum, d.total) })];
      return h('tr', { class: 'clickable', tabindex: 0, onclick: () => onPick(r.name), onkeydown: (e) => e.key === 'Enter' && onPick(r.name) }, ...cells);
    }));
  };
  render();
  return h('div', { class: 'tablewrap' }, h('table', { id: 'top' }, h('thead', {}, head), body));
}

// What an answer lacks, said above the graph (docs/api.md, partial answers): shards that did not
// answer or whose answers were partial themselves (history in their object store only, shards of
// their own missing), and this collector's history only the object store holds when the answer
// did not read it (not a sum, or reading failed: bucketOnly.why). Nothing when the answer is whole.
function partialNote(d) {
  if (!d.partial) return null;
  const s = d.shards || {}, bo = d.bucketOnly, parts = [];
  // (as the X-Pprof-Partial header counts: a diff asks each shard twice, once per selection)
  if (s.missing) parts.push(`${s.missing} of ${s.asked} shard answers missing`);
  if (s.partial) parts.push(`${s.partial} of ${s.asked} shard answers partial`);
  if (bo) parts.push(`history from ${tstr(bo.fromUnixNano)} to ${tstr(bo.toUnixNano)} (${bo.segments} segments) is in the object store only, not in this answer${bo.why ? ` (${bo.why})` : ' (only sums read it)'}`);
  const p = h('p', { class: 'note', id: 'partial', role: 'status' }, h('strong', { text: 'Partial answer: ' }), parts.join('; ') || 'part of the data is missing');
  if (s.why) p.append(h('span', { class: 'muted', text: ` (${s.why})` }));
  return p;
}

// The call tree: the flame graph's frames as an expandable table (children by total, largest
// first), self and total with their share of the root.
function callTree(d, unit, diff, onPick) {
  const c = d.nodes, n = c.length, kids = Array.from({ length: n }, () => []), depth = new Int32Array(n);
  for (let i = 1; i < n; i++) { kids[c.parent[i]].push(i); depth[i] = depth[c.parent[i]] + 1; }
  for (const k of kids) k.sort((a, b) => Math.abs(c.total[b]) - Math.abs(c.total[a]));
  const open = new Set([0]), root = Math.abs(c.total[0]) || 1, body = h('tbody');
  const MAX_KIDS = 500; // a node's children listed at most (the rest summed in one row)
  const cols = diff ? ['Function', 'Base total', 'Total', 'Δ share', 'Self'] : ['Function', 'Self', 'Self%', 'Total', 'Total%'];
  const render = () => {
    const out = [];
    const walk = (i) => {
      const name = i ? d.names[c.name[i]] : 'all', leaf = !kids[i].length;
      const self = c.self[i], tot = c.total[i], btot = diff ? c.btotal[i] : 0;
      const btn = h('button', { class: 'fold', 'aria-expanded': leaf ? null : String(open.has(i)), 'aria-label': leaf ? null : (open.has(i) ? 'collapse' : 'expand'),
        tabindex: -1, text: leaf ? '·' : open.has(i) ? '▾' : '▸' });
      const toggle = () => { if (leaf) return; open.has(i) ? open.delete(i) : open.add(i); render(); };
      // indentation through the CSSOM: the CSP (style-src 'self') refuses style attributes
      const fnCell = h('td', { class: 'fn' }, btn, h('span', { text: name }));
      fnCell.style.paddingLeft = `${4 + 14 * Math.min(depth[i], 40)}px`;
      const ds = diff ? (d.total ? tot / d.total : 0) - (d.baseTotal ? btot / d.baseTotal : 0) : 0;
      const vals = diff
        ? [fmt(btot, unit), fmt(tot, unit), (ds > 0 ? '+' : '') + (100 * ds).toFixed(2) + '%', fmt(self, unit)]
        : [fmt(self, unit), pct(self, root), fmt(tot, unit), pct(tot, root)];
      out.push(h('tr', { class: 'clickable', tabindex: 0, 'data-node': i, 'data-depth': depth[i],
        onclick: (e) => { toggle(); if (i) onPick(name); }, onkeydown: (e) => {
          if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); }
          else if (e.key === 'ArrowRight' && !leaf && !open.has(i)) toggle();
          else if (e.key === 'ArrowLeft' && open.has(i)) toggle();
        } },
        fnCell, ...vals.map((v) => h('td', { class: 'num', text: v }))));
      if (!open.has(i)) return;
      const ks = kids[i];
      ks.slice(0, MAX_KIDS).forEach(walk);
      if (ks.length > MAX_KIDS) out.push(h('tr', {}, h('td', { class: 'muted', colspan: cols.length, text: `… ${ks.length - MAX_KIDS} smaller frames` })));
    };
    walk(0);
    body.replaceChildren(...out);
  };
  render();
  return h('div', { class: 'tablewrap' }, h('table', { id: 'tree' }, h('thead', {}, h('tr', {}, ...cols.map((c, k) => h('th', { class: k ? 'num' : '', text: c })))), body));
}

// Two panes side by side with a handle between them: drag it (or focus it and press the arrow
// keys) to share the width; the left pane's share is kept in the URL (split=PERCENT).
function splitPanes(left, right, st, onResize) {
  let share = Math.min(80, Math.max(20, +st.split || 55));
  const box = h('div', { class: 'split', id: 'split' });
  const handle = h('div', { class: 'splitter', id: 'splitter', role: 'separator', tabindex: 0, 'aria-orientation': 'vertical',
    'aria-label': 'resize the panes', 'aria-valuemin': 20, 'aria-valuemax': 80 });
  const apply = (save) => {
    box.style.gridTemplateColumns = `minmax(0, ${share}fr) 8px minmax(0, ${100 - share}fr)`;
    handle.setAttribute('aria-valuenow', Math.round(share));
    onResize();
    if (save) setState({ split: share.toFixed(1) });
  };
  handle.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    handle.setPointerCapture(e.pointerId);
    const r = box.getBoundingClientRect();
    const move = (ev) => { share = Math.min(80, Math.max(20, 100 * (ev.clientX - r.left) / r.width)); apply(false); };
    const up = () => { handle.removeEventListener('pointermove', move); handle.removeEventListener('pointerup', up); apply(true); };
    handle.addEventListener('pointermove', move);
    handle.addEventListener('pointerup', up);
  });
  handle.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    e.preventDefault();
    share = Math.min(80, Math.max(20, share + (e.key === 'ArrowLeft' ? -5 : 5)));
    apply(true);
  });
  box.append(left, handle, right);
  box.style.gridTemplateColumns = `minmax(0, ${share}fr) 8px minmax(0, ${100 - share}fr)`;
  handle.setAttribute('aria-valuenow', Math.round(share));
  return box;
}

// The sandwich of one function (render's focus=NAME, one extra request): its callers above, as a
// flame graph whose root (the function) is at the bottom, its callees below, an icicle from the
// function; each with its direct callers or callees listed as go tool pprof -peek prints them.
// The line view: the function's values per file:line, hottest first. onPick(name) re-centres.
// pre: a render answer already asked with focus=fn (the explorer's own, when the page opened on
// the sandwich), used instead of a second request.
function focusView(kind, params, d, fn, unit, diff, onPick, pre) {
  const box = h('div', { id: kind === 'lines' ? 'lineview' : 'sandwich', class: 'focusview' });
  const names = [...new Set(d.top.map((r) => r.name))];
  const list = h('datalist', { id: 'fnlist' }, ...names.slice(0, 2000).map((n) => h('option', { value: n })));
  const input = h('input', { type: 'search', id: 'fn', list: 'fnlist', value: fn || '', placeholder: 'function (exact name)', 'aria-label': 'function' });
  input.addEventListener('change', () => input.value && onPick(input.value));
  box.append(h('div', { class: 'controls' }, h('label', { text: kind === 'lines' ? 'lines of' : 'sandwich of' }), input, list));
  if (!fn) { box.append(h('p', { class: 'muted', text: 'Pick a function: click a frame, a table row, or type its name.' })); return box; }
  const status = h('p', { class: 'muted', text: 'Loading…' });
  box.append(status);
  (pre && pre.fn === fn ? Promise.resolve(pre.d) : apiRender({ ...params, focus: fn, max_nodes: 100000, top: 500 })).then((r) => {
    const f = r.focus;
    if (!f) { status.textContent = 'No sample of this selection has that function.'; return; }
    const share = (v) => pct(v, r.total);
    status.replaceChildren(h('strong', { text: f.name }), ` self ${fmt(f.flat, unit)} (${share(f.flat)}), total ${fmt(f.cum, unit)} (${share(f.cum)})` +
      (diff && f.baseCum !== undefined ? `; base self ${fmt(f.baseFlat, unit)}, total ${fmt(f.baseCum, unit)}` : ''));
    status.className = '';
    status.id = 'focusinfo';
    if (kind === 'lines') {
      const cols = diff ? ['Line', 'Base flat', 'Flat', 'Base cum', 'Cum'] : ['Line', 'Flat', 'Flat%', 'Cum', 'Cum%'];
      box.append(h('div', { class: 'tablewrap' }, h('table', { id: 'lines' }, h('thead', {}, h('tr', {}, ...cols.map((c, k) => h('th', { class: k ? 'num' : '', text: c })))),
        h('tbody', {}, ...f.lines.map((l) => h('tr', {}, h('td', { class: 'fn', text: l.line ? `${l.file}:${l.line}` : l.file }),
          ...(diff ? [fmt(l.baseFlat, unit), fmt(l.flat, unit), fmt(l.baseCum, unit), fmt(l.cum, unit)]
            : [fmt(l.flat, unit), share(l.flat), fmt(l.cum, unit), share(l.cum)]).map((v) => h('td', { class: 'num', text: v }))))))));
      return;
    }
    const tree = (t, id, flip, title) => {
      const c = h('canvas', { id: id + '-graph', 'aria-label': title });
      const tc = t.nodes, kids = [];
      for (let i = 0; i < tc.length; i++) if (tc.parent[i] === 0) kids.push(i);
      kids.sort((a, b) => Math.abs(tc.total[b]) - Math.abs(tc.total[a]));
      const rows = kids.map((i) => h('tr', { class: 'clickable', tabindex: 0, onclick: () => onPick(t.names[tc.name[i]]), onkeydown: (e) => e.key === 'Enter' && onPick(t.names[tc.name[i]]) },
        h('td', { class: 'fn', text: t.names[tc.name[i]] }), h('td', { class: 'num', text: fmt(tc.total[i], unit) }), h('td', { class: 'num', text: pct(tc.total[i], f.cum) })));
      const table = h('table', { id, class: 'edges' }, h('thead', {}, h('tr', {}, h('th', { text: title }), h('th', { class: 'num', text: 'Total' }), h('th', { class: 'num', text: 'Share' }))),
        h('tbody', {}, ...(rows.length ? rows : [h('tr', {}, h('td', { class: 'muted', colspan: 3, text: 'none' }))])));
      return { c, table, data: { ...t, sampleType: r.sampleType, total: r.total, baseTotal: r.baseTotal }, flip };
    };
    const up = tree(f.callers, 'callers', true, 'Callers'), down = tree(f.callees, 'callees', false, 'Callees');
    box.append(up.c, down.c, h('div', { class: 'edgelists' }, up.table, down.table));
    const shrunk = [up, down].filter((x) => {
      const g = new Flame(x.c, { flip: x.flip, maxRows: 14, rootName: f.name });
      g.setData(x.data, diff, false);
      return g.overflow > 0;
    });
    if (shrunk.length) box.insertBefore(h('p', { class: 'muted', id: 'recursion', text: `${f.name} calls itself through other functions, so a stack counts once under each of its occurrences and the ${shrunk.map((x) => x.c.getAttribute('aria-label').toLowerCase()).join(' and ')} of a frame can add up to more than the frame (as in the tables and go tool pprof -peek). The graph shrinks them to fit.` }), up.c);
  }).catch((e) => { status.className = 'err'; status.textContent = e.message; });
  return box;
}

// pprof sample labels (pprof.Do): the keys and values present in the selection (/api/v1/tags),
// filters tag=KEY=VALUE / tag=KEY!=VALUE (all must hold; kept in the URL, each a removable chip)
// and group_by=KEY (a flame graph root per value, a timeline line per value).
function labelControls(st, params, sampleType, onChange) {
  const row = h('div', { class: 'controls', id: 'labels' }, h('label', { text: 'labels' }));
  const tags = st.tag || [];
  for (const t of tags) row.append(h('button', { class: 'chip', 'data-tag': t, title: 'remove this filter', text: t + ' ×',
    onclick: () => onChange({ tag: tags.filter((x) => x !== t) }) }));
  const key = h('select', { id: 'tagkey', 'aria-label': 'label key' }, h('option', { value: '', text: 'label…' }));
  const op = h('select', { id: 'tagop', 'aria-label': 'match' }, h('option', { value: '=', text: '=' }), h('option', { value: '!=', text: '≠' }));
  const val = h('select', { id: 'tagvalue', 'aria-label': 'label value' });
  const add = h('button', { id: 'tagadd', text: 'Filter' });
  const group = h('select', { id: 'groupby', 'aria-label': 'group by label' }, h('option', { value: '', text: 'no grouping' }));
  row.append(key, op, val, add, h('label', { text: 'group by' }), group);
  api('/api/v1/tags', { ...params, sample: sampleType }).then((t) => {
    const keys = t.keys || [];
    if (!keys.length) { row.append(h('span', { class: 'muted', id: 'nolabels', text: 'no sample labels in this selection' })); }
    for (const k of keys) {
      key.append(h('option', { value: k.key, text: k.key }));
      group.append(h('option', { value: k.key, text: k.key, selected: st.group_by === k.key }));
    }
    const fill = () => {
      const k = keys.find((x) => x.key === key.value);
      val.replaceChildren(...(k ? k.values : []).map((v) => h('option', { value: v.value, text: `${v.value} (${pct(v.total, t.total)})` })));
    };
    key.onchange = fill;
    if (t.truncated) row.append(h('span', { class: 'muted', text: '(some labels left out: too many)' }));
  }).catch((e) => row.append(h('span', { class: 'err', text: e.message })));
  add.onclick = () => key.value && onChange({ tag: [...tags, `${key.value}${op.value}${val.value}`] });
  group.onchange = () => onChange({ group_by: group.value });
  return row;
}

// The explorer with nothing picked opens on the busiest service's CPU over the last hour: the
// service (or target without one) whose CPU profiles of the last hour sum to the most.
async function busiest() {
  const rows = await api('/api/v1/profiles', { type: 'cpu', from: (Date.now() / 1000 - 3600).toFixed(3), limit: 20000 });
  const sums = new Map();
  for (const r of rows) {
    const types = (r.sampleTypes || '').split(','), k = types.findIndex((t) => t.startsWith('cpu/'));
    const v = r.totals[k >= 0 ? k : types.length - 1] || 0;
    const sel = r.labels.__k8s_name ? { __k8s_namespace: r.labels.__k8s_namespace || '', __k8s_name: r.labels.__k8s_name } : { name: r.labels.monitor };
    const key = JSON.stringify(sel);
    sums.set(key, (sums.get(key) || 0) + Math.abs(v));
  }
  let best = null, bv = -1;
  for (const [k, v] of sums) if (v > bv || (v === bv && k < best)) { best = k; bv = v; }
  return best ? JSON.parse(best) : null;
}

// a time in nanoseconds (a JSON number, so exact to ~256 ns) as the API's "seconds.fraction"
function nsParam(ns) {
  const sec = Math.floor(ns / 1e9), frac = Math.max(0, Math.min(999999999, Math.round(ns - sec * 1e9)));
  return `${sec}.${String(frac).padStart(9, '0')}`;
}

async function pageExplorer(compare) {
  let st = state();
  const rerender = (patch) => { setState(patch); route(); };
  if (!compare && !st.name && !st.__k8s_name && !st.nodefault) {
    // nothing picked: open on the busiest service's CPU over the last hour (replacing the URL,
    // so Back does not return to the empty page)
    const pick = await busiest().catch(() => null);
    if (pick) { setState({ ...pick, type: 'cpu', range: st.range || '1h' }); st = state(); }
  }
  // the flame graph's request goes out before the selection controls' /api/v1/series answers:
  // it needs only the URL
  const hasSel = st.name || st.__k8s_name;
  const params = apiParams({ ...st, ...resolveRange(st) });
  if (compare) {
    // the base defaults to the window before the comparison's
    const bsecs = RANGES[st.base_range || st.range || '1h'] || 3600;
    // two versions (base_version) compare over everything stored unless a range is given
    if (!st.base_from && !st.base_to && !st.base_version) {
      const to = params.from ? +params.from : Date.now() / 1000 - bsecs;
      params.base_to = to.toFixed(3);
      params.base_from = (to - bsecs).toFixed(3);
      if (!params.from) params.from = to.toFixed(3);
    }
    for (const k of ['base_range', 'range']) delete params[k];
  }
  // one profile picked on the timeline: profile=id:N (the API's record id) or FROM,TO (a window
  // around its end time, before the timeline had ids); the timeline keeps showing the range
  const tparams = { ...params };
  let single = null;
  if (!compare && st.profile) {
    // id:N@PEER: a record of another shard (the timeline entry's "peer", when the collector asks
    // its peers), asked of that peer through this collector
    const m = st.profile.match(/^id:(\d+)(?:@(.+))?$/), w = st.profile.match(/^([0-9.]+),([0-9.]+)$/);
    if (m) { params.id = m[1]; if (m[2]) params.peer = m[2]; single = st.profile; }
    else if (w) { params.from = w[1]; params.to = w[2]; single = st.profile; }
  }
  // a page opened on the sandwich of a known function asks for it in the same request (focus=):
  // one answer to parse instead of the flame graph's and then the sandwich's, which repeats it
  const TABS = [['top', 'Top table'], ['tree', 'Call tree'], ['sandwich', 'Sandwich'], ['lines', 'Lines']];
  const tab = TABS.some(([k]) => k === st.table) ? st.table : 'top';
  const preFn = tab === 'sandwich' ? st.fn || st.focus || '' : '';
  const rendered = hasSel ? apiRender({ ...params, max_nodes: 100000, top: 2000, ...(preFn ? { focus: preFn } : {}) }) : null;
  if (rendered) rendered.catch(() => {}); // (awaited below; a failure is shown there)
  const { sel, type, agg, version, versions } = await selectionControls(st, rerender);
  const controls = h('div', { class: 'controls' }, ...[sel, type, agg, version].filter(Boolean));
  if (versions.length >= 2) {
    // deploy to deploy: the newest version against the one before it (or the picked one
    // against its predecessor), the same service on both sides
    const at = st.version && !compare ? versions.indexOf(st.version) : versions.length - 1;
    const [cur, prev] = [versions[Math.max(at, 1)], versions[Math.max(at, 1) - 1]];
    const selp = st.name ? { name: st.name, base_name: st.name } : { __k8s_namespace: st.__k8s_namespace || '', __k8s_name: st.__k8s_name,
      base___k8s_namespace: st.__k8s_namespace || '', base___k8s_name: st.__k8s_name };
    controls.append(h('button', { id: 'prevversion', text: `Compare ${cur} with the previous version (${prev})`,
      onclick: () => go('/compare', { ...selp, type: st.type || 'cpu', version: cur, base_version: prev,
        // an explicit window of the explorer applies to both sides
        ...(st.from ? { from: st.from, base_from: st.from } : {}), ...(st.to ? { to: st.to, base_to: st.to } : {}) }) }));
  }
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
  app().replaceChildren(...page, h('p', { text: 'Loading…' }));
  let d;
  try {
    d = await rendered;
  } catch (e) {
    app().replaceChildren(...page, h('p', { class: 'err', id: 'error', text: e.message }));
    return;
  }
  const unit = d.sampleType.unit;
  const sample = h('select', { 'aria-label': 'sample type', id: 'sample' }, ...d.sampleTypes.map((s) => h('option', { value: s.type, text: `${s.type} (${s.unit})`, selected: s.type === d.sampleType.type })));
  sample.onchange = () => rerender({ sample: sample.value, focus: '' });
  controls.append(sample);
  // the search box also picks the function shown over time: Enter (or a name chosen from its
  // list, or the button) picks that exact name, else the matching function with the largest total
  const fnNames = [...new Set(d.top.map((r) => r.name))];
  const searchNames = h('datalist', { id: 'searchnames' }, ...fnNames.map((n) => h('option', { value: n })));
  const search = h('input', { type: 'search', id: 'search', list: 'searchnames', placeholder: 'search functions (substring; Enter: show over time)', value: st.search || '', 'aria-label': 'search' });
  const searchFn = h('button', { id: 'searchfn', text: 'Show over time', title: 'the function named in the search box (or its hottest match) over time' });
  const share = h('span', { class: 'muted', id: 'share' });
  const dlParams = { ...params };
  delete dlParams.sample;
  const download = h('a', { href: '/api/v1/profile?' + new URLSearchParams(dlParams), id: 'download', download: '' }, 'Download pprof');
  // the merged CPU profile trimmed for go build -pgo (/api/v1/pgo), for CPU views without a base
  const pgoParams = { ...dlParams };
  for (const k of Object.keys(pgoParams)) if (k.startsWith('base_') || k === 'agg') delete pgoParams[k];
  const pgo = (d.profileType === 'cpu' && !compare) ? h('a', { href: '/api/v1/pgo?' + new URLSearchParams(pgoParams), id: 'pgo', download: 'default.pgo' }, 'Download default.pgo') : null;
  const cmd = h('span', { class: 'cmd', id: 'command', text: goCommand(dlParams) });
  const copy = h('button', { text: 'Copy go tool pprof command', id: 'copy', onclick: async () => {
    try { await navigator.clipboard.writeText(cmd.textContent); copy.textContent = 'Copied'; } catch { copy.textContent = 'Select the command to copy'; }
  } });
  const reset = h('button', { text: 'Reset zoom', id: 'reset' });
  const flip = st.layout === 'flame';
  const layoutBtn = h('button', { id: 'layout', 'aria-pressed': String(flip), text: flip ? 'Icicle (root on top)' : 'Flame graph (root at the bottom)',
    onclick: () => rerender({ layout: flip ? '' : 'flame' }) });
  const tl = h('canvas', { id: 'timeline', 'aria-label': 'timeline of totals: hover for values, drag to select a range, click a point to open that profile' });
  const canvas = h('canvas', { id: 'flame', 'aria-label': compare ? 'diff flame graph' : 'flame graph' });
  const summary = h('p', { class: 'muted', id: 'summary', text:
    `${d.profiles} profiles, total ${fmt(d.total, unit)}` + (d.baseTotal !== undefined ? `; base ${d.baseProfiles} profiles, total ${fmt(d.baseTotal, unit)}` : '') +
    (d.pruned.nodes ? `; showing the ${d.pruned.kept} largest of ${d.pruned.kept + d.pruned.nodes} frames` : '') +
    (d.resolution && d.resolution !== 'raw' ? `; resolution ${d.resolution}: answered from rollups where the raw profiles are past their retention` : '') +
    (d.truncated ? `; only the newest ${d.profiles} profiles are merged (more matched than a query reads): narrow the range for the whole of it` : '') });
  summary.dataset.resolution = d.resolution || 'raw';
  const singleNote = single ? h('p', { id: 'single', class: 'note' }, h('strong', { text: 'One profile' }),
    ` ending ${st.profile_at ? tstr(+st.profile_at) : ''} `, h('button', { id: 'unpick', text: 'Back to the whole range', onclick: () => rerender({ profile: '', profile_at: '' }) })) : null;
  // the functions whose share of the total grew most (/api/v1/regressions, the same selections)
  const regressions = compare ? h('div', { id: 'regressionsbox' }, h('h2', { text: 'Regressions: the functions whose share of the total grew most' })) : null;
  if (compare) {
    api('/api/v1/regressions', { ...params, limit: 20 }).then((r) => {
      const rows = r.functions.map((f) => h('tr', { class: 'clickable', tabindex: 0, onclick: () => pick(f.name), onkeydown: (e) => e.key === 'Enter' && pick(f.name) },
        h('td', { class: 'fn', text: f.name }), h('td', { class: 'num', text: (100 * f.baseFlatShare).toFixed(2) + '%' }),
        h('td', { class: 'num', text: (100 * f.flatShare).toFixed(2) + '%' }), h('td', { class: 'num ' + (f.change > 0 ? 'down' : 'up'), text: (f.change > 0 ? '+' : '') + (100 * f.change).toFixed(2) + '%' }),
        h('td', { class: 'num', text: fmt(f.baseFlat, unit) }), h('td', { class: 'num', text: fmt(f.flat, unit) })));
      regressions.append(h('div', { class: 'tablewrap' }, h('table', { id: 'regressions' }, h('thead', {}, h('tr', {}, ...['Function', 'Base share', 'Share', 'Change', 'Base flat', 'Flat'].map((c, k) => h('th', { class: k ? 'num' : '', text: c })))),
        h('tbody', {}, ...(rows.length ? rows : [h('tr', {}, h('td', { class: 'muted', colspan: 6, text: 'no function grew' }))])))));
    }).catch((e) => regressions.append(h('p', { class: 'err', text: e.message })));
  }
  const labelRow = labelControls(st, params, d.sampleType.type, rerender);
  const tlLegend = !compare && st.group_by ? h('p', { class: 'legend', id: 'tllegend' }, `lines by ${st.group_by}: `) : null;
  // function over time: the function picked last (fn=), self and total share per point
  const fnBox = compare ? null : h('div', { id: 'fnbox' });
  const showFn = (name) => {
    if (!fnBox) return;
    if (!name) { fnBox.replaceChildren(); return; }
    // summed over the selection, or one pair of lines per pod (fnby=pod, kept in the URL)
    const perPod = state().fnby === 'pod';
    const fnCanvas = h('canvas', { id: 'fntimeline', class: 'timeline', 'aria-label': 'the function\'s self and total share over time' });
    const by = h('select', { id: 'fnby', 'aria-label': 'function over time: summed or per pod' },
      h('option', { value: '', text: 'summed over the selection', selected: !perPod }), h('option', { value: 'pod', text: 'per pod', selected: perPod }));
    by.onchange = () => { setState({ fnby: by.value }); showFn(name); };
    const podLegend = perPod ? h('p', { class: 'legend', id: 'fnlegend' }, 'pods (total solid, self dashed): ') : null;
    fnBox.replaceChildren(...[h('p', { class: 'muted' }, 'Function over time: ', h('strong', { id: 'fnname', text: name }),
      ' — ', ...(perPod ? ['per pod, self and total'] : [h('span', { class: 'fnself', text: 'self' }), ' and ', h('span', { class: 'fntotal', text: 'total' })]), ' share of each profile\'s total ',
      by, ' ', h('button', { id: 'fnclose', text: 'close', onclick: () => { setState({ fn: '', fnby: '' }); showFn(''); } })), podLegend, fnCanvas].filter(Boolean));
    const fp = { ...tparams, sample: d.sampleType.type, function: name };
    delete fp.group_by;
    api('/api/v1/timeline', fp).then((series) => {
      const lines = drawFunctionTimeline(fnCanvas, series, unit, perPod);
      if (podLegend) lines.forEach((l, k) => podLegend.append(h('span', { class: 'swatch c' + (k % GROUP_COLOURS.length) }), h('em', { class: 'pod', text: l.key })));
    }).catch((e) => fnBox.append(h('p', { class: 'err', text: e.message })));
  };
  const legend = compare ? h('p', { class: 'legend' }, 'colour: change of the share of the total', h('span', { class: 'grew' }), 'grew', h('span', { class: 'shrank' }), 'shrank') : null;
  const flame = new Flame(canvas, { flip, onFocus: (name) => setState({ focus: name }) });
  const pick = (name) => { flame.focusName(name); setState({ focus: name, fn: name }); showFn(name); canvas.scrollIntoView({ block: 'nearest' }); };
  const tabs = h('div', { class: 'tabs', role: 'tablist' }, ...TABS.map(([k, label]) =>
    h('button', { role: 'tab', id: 'tab-' + k, 'aria-selected': String(tab === k), text: label, onclick: () => rerender({ table: k === 'top' ? '' : k }) })));
  const right = h('div', { class: 'pane' });
  // the sandwich and line view follow the function picked last (fn=, else the zoomed frame)
  const fillRight = () => {
    const cur = state();
    const fn = cur.fn || cur.focus || (d.top[0] && d.top[0].name) || '';
    const pickFn = (name) => { setState({ fn: name }); fillRight(); };
    right.replaceChildren(tabs, tab === 'tree' ? callTree(d, unit, compare, pick) : tab === 'top' ? topTable(d, unit, pick, compare, st)
      : focusView(tab, params, d, fn, unit, compare, pickFn, preFn ? { fn: preFn, d } : null));
  };
  flame.onFocus = (name) => { setState({ focus: name, fn: (tab === 'sandwich' || tab === 'lines') && name ? name : state().fn }); if ((tab === 'sandwich' || tab === 'lines') && name) fillRight(); };
  const panes = splitPanes(h('div', { class: 'pane' }, canvas), right, st, () => flame.d && flame.draw());
  // (replaceChildren would print a null as the text "null")
  app().replaceChildren(...[...page, h('div', { class: 'controls' }, ...[search, searchNames, compare ? null : searchFn, share, reset, layoutBtn, download, pgo, copy].filter(Boolean)), h('div', { class: 'controls' }, cmd),
    compare ? null : tl, tlLegend, fnBox, labelRow, singleNote, summary, partialNote(d), legend, panes, compare ? regressions : null].filter(Boolean));
  flame.setData(d, compare, st.norm === '1');
  fillRight(); // after the flame graph is drawn: a table of 2000 rows takes as long to build
  const applySearch = () => {
    flame.search = search.value;
    flame.draw();
    share.textContent = search.value ? `matches: ${pct(flame.matched, Math.abs(d.nodes.total[0]))} of total` : '';
    setState({ search: search.value });
  };
  search.addEventListener('input', applySearch);
  const pickSearched = () => {
    const term = search.value.trim(), low = term.toLowerCase();
    if (!term) return;
    const best = d.top.filter((r) => r.name.toLowerCase().includes(low)).reduce((b, r) => (!b || Math.abs(r.cum) > Math.abs(b.cum) ? r : b), null);
    const name = fnNames.includes(term) ? term : best ? best.name : '';
    if (name) pick(name);
    else share.textContent = 'no function of the table matches';
  };
  search.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); pickSearched(); } });
  // a name chosen from the list replaces the text at once (Chromium: insertReplacementText)
  search.addEventListener('input', (e) => { if (e.inputType === 'insertReplacementText' && fnNames.includes(search.value)) pickSearched(); });
  searchFn.onclick = pickSearched;
  if (st.search) applySearch();
  if (st.focus) flame.focusName(st.focus);
  reset.onclick = () => { flame.zoom = 0; flame.draw(); setState({ focus: '' }); };
  window.onresize = () => flame.draw();
  showFn(st.fn || '');
  if (!compare) {
    const tp = { ...tparams, sample: d.sampleType.type };
    api('/api/v1/timeline', tp).then((series) => {
      if (tlLegend) [...new Set(series.map((s) => Object.values(s.tag || {})[0]))].forEach((v, k) =>
        tlLegend.append(h('span', { class: 'swatch c' + (k % GROUP_COLOURS.length) }), h('em', { class: 'group', text: v === '' ? '(none)' : v })));
      return series;
    }).then((series) => drawTimeline(tl, series, unit,
      (a, b) => rerender({ from: nsParam(a), to: nsParam(b), range: '', profile: '', profile_at: '' }),
      (p) => {
        const rec = p.recs.length === 1 ? p.recs[0] : null;
        // the record's id when the timeline has ids, else a window of ±2 µs around its end
        rerender(rec && rec.id != null ? { profile: 'id:' + rec.id + (rec.peer ? '@' + rec.peer : ''), profile_at: String(p.end) }
          : { profile: `${nsParam(p.end - 2000)},${nsParam(p.end + 2000)}`, profile_at: String(p.end) });
      })).catch(() => {});
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
      apiRender({ ...sel, type: t, agg: 'latest', max_nodes: 400, top: 1 })
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
