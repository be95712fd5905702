// Browser tests of the collector UI in Debian's chromium, driven by playwright-core.
// Usage: node ui.test.mjs BASE_URL OUT_DIR EXPECTED_TOP_FUNCTION FROZEN_TO PAYLOADS_JSON BADTEXT_JSON
// Prints "ok - name" / "not ok - name" per check; tests/run.py counts them.
// Checks read what the page shows (table cells, the flame graph's pixels) and compare it with
// the API's answer for the same view (itself checked against go tool pprof by the collector
// suite); values shown rounded are compared within the rounding of what is shown.
import { chromium } from 'playwright-core';
import fs from 'node:fs';

const [base, out, expectedTop, frozenTo, payloadsJson, badtextJson, sandwichJson] = process.argv.slice(2);
// go tool pprof's -peek and -lines for one function of the explorer's profile: {name, flat, cum, callers, callees, lines}
const S = JSON.parse(sandwichJson || '{}');
const P = JSON.parse(payloadsJson); // the hostile target's strings: {monitor, ns, svc, fn}
// the invalid UTF-8 target: go tool pprof's function names and the sample types, made valid
const W = JSON.parse(badtextJson || '{"names": [], "types": []}');
const TO = `&to=${frozenTo}`; // the data the explorer checks look at does not move
const sec = (ns) => (ns / 1e9).toFixed(3);
// the URL parameters that are the page's own (view state), not API parameters
const VIEW = ['search', 'focus', 'norm', 'range', 'base_range', 'layout', 'table', 'sort', 'asc', 'split', 'profile', 'profile_at', 'nodefault', 'fn', 'fnby'];
fs.mkdirSync(out, { recursive: true });
let failed = 0;
const report = (name, ok, detail) => {
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}`);
  if (!ok) { failed++; if (detail) console.log('    ' + String(detail).split('\n').join('\n    ')); }
};
// A check passes only by returning true: one that falls off its end (returns undefined) or
// returns a value that merely looks true has asserted nothing and fails.
async function check(name, fn) {
  try { const r = await fn(); report(name, r === true, r === true ? '' : `the check returned ${JSON.stringify(r)}, not true`); }
  catch (e) { report(name, false, e.stack || e.message); }
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1400, height: 900 } });
const page = await ctx.newPage();
const consoleErrors = [], dialogs = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
page.on('response', (r) => { if (r.status() >= 400) consoleErrors.push(`HTTP ${r.status()} ${r.url()}`); });
page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
const shot = (name) => page.screenshot({ path: `${out}/${name}.png`, fullPage: true });
const api = async (path) => (await (await fetch(base + path)).json()).data;

// A value as the UI prints it ("1.23s", "120ms", "4.5k", "812") back to a number, and how far
// from the true value the printing may be (half a unit of the last digit shown).
const UNITS = { '': 1, k: 1e3, M: 1e6, G: 1e9, ns: 1, 'µs': 1e3, ms: 1e6, s: 1e9, min: 60e9, h: 3600e9, B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };
function shown(text) {
  const m = String(text).trim().match(/^([+-]?[0-9]+)(?:\.([0-9]+))?(ns|µs|ms|s|min|h|kB|MB|GB|B|k|M|G|)$/);
  if (!m) throw new Error(`not a shown value: ${JSON.stringify(text)}`);
  const mult = UNITS[m[3]], decimals = m[2] ? m[2].length : 0;
  return { value: parseFloat(m[1] + '.' + (m[2] || '0')) * mult, slack: 0.5 * mult / 10 ** decimals };
}
const near = (text, v) => { const s = shown(text); return Math.abs(s.value - v) <= s.slack + 1e-9 * Math.abs(v); };

// The flame graph as drawn: per depth row, how many pixels are painted, and the canvas size.
// The icicle lays each frame out with width total / root total of the canvas, so a row's
// painted pixels are the sum of its frames' totals over the root's (frames under half a pixel
// are not drawn; edges may round by a pixel per frame).
async function flamePixels(sel, depths, rowH = 18) {
  return page.$eval(sel, (c, [ds, rh]) => {
    const g = c.getContext('2d');
    const rows = ds.map((d) => {
      const px = g.getImageData(0, d * rh + 3, c.width, 1).data;
      let n = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
      return n;
    });
    return { width: c.width, height: c.height, rows };
  }, [depths, rowH]);
}
// The icicle's layout: a frame's share of its parent's width is its total over the parent's;
// where a frame's children add up to more than it (a sandwich's tree of a function that calls
// itself through others, docs/api.md), they share its width in proportion to their totals.
// Per asked depth, the painted pixels and frames; per node its left edge and width in [0, 1]
// (siblings left to right in the answer's order); shrunk: the frames whose children overflowed.
function expectedRows(d, depths, width) {
  const n = d.nodes.length, depth = new Int32Array(n), kids = new Float64Array(n);
  const x = new Float64Array(n), w = new Float64Array(n), next = new Float64Array(n), sum = new Map(), count = new Map();
  let maxDepth = 0, shrunk = 0;
  for (let i = 1; i < n; i++) kids[d.nodes[i][1]] += Math.abs(d.nodes[i][3]);
  d.nodes.forEach((nd, i) => {
    const p = nd[1];
    if (p >= 0) {
      depth[i] = depth[p] + 1;
      const span = Math.max(Math.abs(d.nodes[p][3]), kids[p]) || 1;
      w[i] = w[p] * Math.abs(nd[3]) / span;
      x[i] = x[p] + next[p];
      next[p] += w[i];
    } else w[i] = 1;
    if (kids[i] > Math.abs(nd[3])) shrunk++;
    maxDepth = Math.max(maxDepth, depth[i]);
    sum.set(depth[i], (sum.get(depth[i]) || 0) + w[i]);
    count.set(depth[i], (count.get(depth[i]) || 0) + 1);
  });
  return { maxDepth, shrunk, x, w, depth, rows: depths.map((k) => ({ px: width * (sum.get(k) || 0), frames: count.get(k) || 0 })) };
}
// /api/v1/render?encoding=binary (docs/api.md), as the page fetched it, decoded here on its own
// (not by the page's reader): the focus trees' node blocks back into [name, parent, self, total]
function decodeRenderBinary(buf) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.byteLength < 12 || dv.getUint32(0, true) !== 0x42525050 || dv.getUint32(4, true) !== 1) throw new Error('not a binary render answer');
  const jl = dv.getUint32(8, true), doc = JSON.parse(new TextDecoder().decode(buf.subarray(12, 12 + jl)));
  const base = Math.ceil((12 + jl) / 8) * 8;
  const rows = (o) => {
    const n = o.count, v = o.values, off = base + o.offset, g = o.scale;
    const i32 = (at, i) => dv.getInt32(at + 4 * i, true), f64 = (at, i) => dv.getFloat64(at + 8 * i, true);
    const out = [];
    for (let i = 0; i < n; i++) {
      const row = [i32(off, i), i32(off + 4 * n, i)];
      for (let c = 0; c < v; c++) row.push(g ? i32(off + 8 * n + 4 * n * c, i) * g : f64(off + 8 * n + 8 * n * c, i));
      out.push(row);
    }
    return out;
  };
  const d = doc.data;
  if (d.focus) for (const k of ['callers', 'callees']) d.focus[k].nodes = rows(d.focus[k].nodes);
  return d;
}
function compareRows(drawn, want) {
  const bad = [];
  want.rows.forEach((w, k) => {
    if (Math.abs(drawn.rows[k] - w.px) > w.frames + 2) bad.push(`depth ${k}: ${drawn.rows[k]} px painted, want ${w.px.toFixed(1)} (${w.frames} frames)`);
  });
  return bad;
}
// Nothing from the hostile target became markup: no element, attribute handler or link that
// escaping would have prevented (markup of this kind would change the DOM despite the CSP).
const injected = () => page.evaluate(() => {
  const found = [...document.querySelectorAll('[class^="xss"], img, svg, iframe, script:not([src]), a[href^="javascript:"]')].map((e) => e.outerHTML.slice(0, 80));
  for (const e of document.querySelectorAll('*')) for (const a of e.attributes) if (a.name.startsWith('on')) found.push(`${e.tagName} ${a.name}`);
  return found;
});

await check('targets page lists every target and type, with health', async () => {
  await page.goto(base + '/targets');
  await page.waitForSelector('#targets tbody tr.target');
  const rows = await page.$$eval('#targets tbody tr.target', (rs) => rs.map((r) => r.textContent));
  await shot('targets');
  const apiTargets = await api('/api/v1/targets');
  return rows.length === apiTargets.length && rows.some((r) => r.includes('demo') && r.includes('up'));
});

await check('targets filter box narrows the list', async () => {
  await page.fill('input[type=search]', 'goroutine');
  const rows = await page.$$eval('#targets tbody tr.target', (rs) => rs.map((r) => r.textContent));
  await page.fill('input[type=search]', '');
  return rows.length > 0 && rows.every((r) => r.toLowerCase().includes('goroutine'));
});

await check('targets are grouped namespace -> service -> target, and groups fold', async () => {
  const groups = await page.$$eval('#targets button.fold', (b) => b.map((x) => x.dataset.group));
  const before = (await page.$$('#targets tbody tr.target')).length;
  await page.click('#targets button.fold[data-group="shop"]');
  const after = (await page.$$('#targets tbody tr.target')).length;
  const expanded = await page.$eval('#targets button.fold[data-group="shop"]', (b) => b.getAttribute('aria-expanded'));
  await page.click('#targets button.fold[data-group="shop"]');
  const inShop = (await api('/api/v1/targets')).filter((x) => x.labels.__k8s_namespace === 'shop').length;
  return groups.includes('shop') && groups.includes('checkout') && inShop >= 4 && after === before - inShop && expanded === 'false';
});

await check('explorer: top row equals the API and go tool pprof; the flame graph paints each depth as wide as its frames\' totals', async () => {
  await page.goto(base + '/explorer?name=demo&type=cpu' + TO);
  await page.waitForSelector('#top tbody tr');
  const first = await page.$eval('#top tbody tr td', (td) => td.textContent);
  const d = await api('/api/v1/render?name=demo&type=cpu&max_nodes=100000&top=2000' + TO);
  await shot('explorer');
  if (first !== d.top[0].name) throw new Error(`UI top row ${first}, API ${d.top[0].name}`);
  if (!expectedTop || first !== expectedTop) throw new Error(`UI top row ${first}, go tool pprof ${JSON.stringify(expectedTop)}`);
  const depths = [0, 1, 2, 3, 4, 5];
  const drawn = await flamePixels('#flame', depths);
  const want = expectedRows(d, depths, drawn.width);
  const bad = compareRows(drawn, want);
  if (drawn.height !== Math.min(want.maxDepth + 1, 400) * 18) bad.push(`canvas ${drawn.height} px high, want ${want.maxDepth + 1} rows of 18`);
  if (drawn.rows[0] < drawn.width - 2) bad.push(`the root row is not painted across: ${drawn.rows[0]} of ${drawn.width}`);
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

// the timeline's points as the API has them: per end time, the sum over series
async function timelineApi(q) {
  const series = await api('/api/v1/timeline?' + q);
  const by = new Map();
  for (const s of series) for (const [, end, v] of s.points) by.set(end, (by.get(end) || 0) + v);
  return [...by.entries()].sort((a, b) => a[0] - b[0]);
}
const TL = { L: 64, R: 12, T: 10, B: 22, H: 130 }; // the timeline's plot area inside the canvas

await check('timeline: the value axis is in the sample\'s unit and spans the largest point; hovering shows each point\'s time and value as the API has them', async () => {
  await page.waitForFunction(() => +(document.querySelector('#timeline')?.dataset.points || 0) >= 2, null, { timeout: 15000 });
  const pts = await timelineApi(`name=demo&type=cpu&sample=cpu${TO}`);
  const ds = await page.$eval('#timeline', (c) => ({ ...c.dataset }));
  const bad = [];
  if (+ds.points !== pts.length) bad.push(`${ds.points} points drawn, the API has ${pts.length}`);
  const vmax = Math.max(...pts.map((p) => p[1]));
  const ticks = ds.yticks.split('|');
  // every tick label a duration (the sample type cpu is in nanoseconds), from 0 up to the top
  const tv = ticks.map((t) => { const m = t.match(/^[0-9.]+(ns|µs|ms|s|min|h)$/); if (!m) bad.push(`tick ${t} is not a duration`); return m ? shown(t).value : NaN; });
  const ymax = +ds.ymax, step = ymax / (ticks.length - 1);
  if (tv[0] !== 0 || !near(ticks.at(-1), ymax)) bad.push(`ticks ${ticks} for top ${ymax}`);
  if (!(ymax >= vmax && ymax < vmax + step + 1e-9)) bad.push(`axis top ${ymax} (step ${step}) for the largest point ${vmax}`);
  // hover across the plot: each tooltip names a point the API has, with its value
  const box = await (await page.$('#timeline')).boundingBox();
  let matched = 0;
  for (const [end] of pts.slice(0, 12)) {
    const x = TL.L + (box.width - TL.L - TL.R) * (end - pts[0][0]) / (pts.at(-1)[0] - pts[0][0]);
    await page.mouse.move(box.x + x, box.y + 60);
    const text = await page.$eval('#tooltip', (t) => (t.hidden ? '' : t.textContent));
    const m = text.match(/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)Z\n(\S+)/);
    if (!m) { bad.push(`no point shown at x=${x.toFixed(0)}: ${JSON.stringify(text)}`); continue; }
    const t = Date.parse(m[1].replace(' ', 'T') + 'Z') * 1e6;
    const hit = pts.find(([e, v]) => e >= t && e < t + 1e9 && near(m[2], v));
    if (!hit) bad.push(`tooltip ${JSON.stringify(text)}: no API point in that second with that value`);
    else if (Math.abs(hit[0] - end) > 1e6) bad.push(`hovered the point at ${end}, shown ${hit[0]}`);
    else matched++;
  }
  await page.mouse.move(box.x + box.width / 2, box.y + box.height + 200);
  if (matched < 2) bad.push(`${matched} points matched`);
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

// Opens the explorer on q, clicks the timeline's middle point (the API's points for tq) and
// waits for that one profile's page: the points, the index clicked, its end time, the summary.
async function clickMiddlePoint(q, tq) {
  await page.goto(base + '/explorer?' + q);
  await page.waitForFunction(() => +(document.querySelector('#timeline')?.dataset.points || 0) >= 2, null, { timeout: 15000 });
  const pts = await timelineApi(tq);
  const k = Math.floor(pts.length / 2), end = pts[k][0];
  const box = await (await page.$('#timeline')).boundingBox();
  const x = TL.L + (box.width - TL.L - TL.R) * (end - pts[0][0]) / (pts.at(-1)[0] - pts[0][0]);
  await page.mouse.click(box.x + x, box.y + 60);
  await page.waitForSelector('#single', { timeout: 10000 });
  await page.waitForSelector('#top tbody tr');
  return { pts, k, end, summary: await page.$eval('#summary', (e) => e.textContent) };
}

await check('timeline: clicking a point opens that one profile (its total is the stored record\'s)', async () => {
  const { pts, k, end, summary } = await clickMiddlePoint('name=demo&type=cpu' + TO, `name=demo&type=cpu&sample=cpu${TO}`);
  const at = +new URL(page.url()).searchParams.get('profile_at');
  const recs = (await api('/api/v1/profiles?type=cpu&name=demo' + TO)).filter((r) => Math.abs(r.endUnixNano - end) < 1000);
  const bad = [];
  if (recs.length !== 1) bad.push(`${recs.length} records end at ${end}`);
  if (Math.abs(at - end) > 1000) bad.push(`picked ${at}, clicked ${end}`);
  const m = summary.match(/^(\d+) profiles, total (\S+?)(;|$)/);
  const total = recs.length ? recs[0].totals[recs[0].sampleTypes.split(',').findIndex((t) => t.startsWith('cpu/'))] : NaN;
  if (!m || m[1] !== '1' || !near(m[2], total)) bad.push(`summary ${JSON.stringify(summary)}, the record's cpu total ${total}`);
  if (Math.abs(total - pts[k][1]) > 0) bad.push(`record total ${total}, timeline point ${pts[k][1]}`);
  await shot('explorer-single');
  await page.click('#unpick');
  await page.waitForFunction(() => !new URLSearchParams(location.search).get('profile') && !document.querySelector('#single') && document.querySelector('#summary'), null, { timeout: 10000 });
  const back = await page.$eval('#summary', (s) => s.textContent);
  if (/^1 profiles/.test(back)) bad.push(`back to the range: ${back}`);
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('timeline: dragging selects a range (from/to in the URL) holding the points under the drag', async () => {
  await page.waitForFunction(() => +(document.querySelector('#timeline')?.dataset.points || 0) >= 2, null, { timeout: 15000 });
  const pts = await timelineApi(`name=demo&type=cpu&sample=cpu${TO}`);
  const box = await (await page.$('#timeline')).boundingBox();
  const W = box.width - TL.L - TL.R, T = (px) => pts[0][0] + (pts.at(-1)[0] - pts[0][0]) * (px - TL.L) / W;
  const x0 = TL.L + W * 0.2, x1 = TL.L + W * 0.95;
  const old = await page.$('#summary'); // the page before the drag: gone once the range is drawn
  await page.mouse.move(box.x + x0, box.y + 40);
  await page.mouse.down();
  await page.mouse.move(box.x + x1, box.y + 40, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => new URLSearchParams(location.search).has('from'), null, { timeout: 10000 });
  await page.waitForFunction((el) => !el.isConnected && document.querySelector('#summary'), old, { timeout: 10000 });
  const u = new URL(page.url()), from = +u.searchParams.get('from') * 1e9, to = +u.searchParams.get('to') * 1e9;
  const under = pts.filter(([e]) => e >= T(x0) + 1e6 && e <= T(x1) - 1e6).length;
  const inside = pts.filter(([e]) => e >= from && e <= to).length;
  const summary = await page.$eval('#summary', (s) => s.textContent);
  // the range is where the drag started and ended, within 2 pixels' worth of time
  const px2 = 2 * (pts.at(-1)[0] - pts[0][0]) / W;
  if (!(to > from) || Math.abs(from - T(x0)) > px2 || Math.abs(to - T(x1)) > px2) throw new Error(`from ${from} to ${to}, dragged ${T(x0)}..${T(x1)} (2 px = ${px2} ns)`);
  if (inside !== under || !summary.startsWith(`${inside} profiles`)) throw new Error(`${under} points under the drag, ${inside} in the range, summary ${summary}`);
  return true;
});

await check('clicking a frame zooms (focus in the URL); the link, opened in a new page, draws the same zoomed graph', async () => {
  await page.goto(base + '/explorer?name=demo&type=cpu' + TO);
  await page.waitForSelector('#top tbody tr');
  const picture = () => page.$eval('#flame', (c) => c.toDataURL());
  const unzoomed = await picture();
  // the widest frame under the root, where the page drew it (from the API's numbers)
  const d = await api('/api/v1/render?name=demo&type=cpu&max_nodes=100000&top=1' + TO);
  const kids = d.nodes.map((n, i) => [n, i]).filter(([n]) => n[1] === 0);
  const root = d.nodes[0][3];
  let x = 0, at = 0, widest = 0;
  for (const [n] of kids) { if (n[3] > widest) { widest = n[3]; at = x + n[3] / 2; } x += n[3]; }
  const box = await (await page.$('#flame')).boundingBox();
  await page.mouse.click(box.x + 1 + (box.width - 2) * at / root, box.y + 18 + 9);
  await page.waitForFunction(() => new URLSearchParams(location.search).get('focus'), null, { timeout: 5000 });
  const focus = new URL(page.url()).searchParams.get('focus');
  const zoomed = await picture();
  const other = await ctx.newPage();
  await other.goto(page.url());
  await other.waitForSelector('#top tbody tr');
  await other.waitForFunction(() => (window.__flameDraws || []).length >= 2, null, { timeout: 10000 }); // drawn, then zoomed
  const linked = await other.$eval('#flame', (c) => c.toDataURL());
  await other.screenshot({ path: `${out}/explorer-zoomed.png`, fullPage: true });
  await other.close();
  const widestName = d.names[kids.find(([n]) => n[3] === widest)[0][0]];
  if (focus !== widestName) throw new Error(`focus ${focus}, clicked ${widestName}`);
  if (zoomed === unzoomed) throw new Error('the click did not change the picture');
  if (linked !== zoomed) throw new Error('the link draws a different picture');
  return true;
});

await check('keyboard: arrows move the flame graph zoom, Escape resets', async () => {
  await page.goto(base + '/explorer?name=demo&type=cpu' + TO);
  await page.waitForSelector('#top tbody tr');
  await page.focus('#flame');
  const focusNow = () => new URLSearchParams(location.search).get('focus');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  /* the URL follows the view a moment later: wait for it rather than race it */
  await page.waitForFunction(focusNow, null, { timeout: 10000 });
  const f1 = new URL(page.url()).searchParams.get('focus');
  await page.keyboard.press('ArrowUp');
  await page.waitForFunction((f) => new URLSearchParams(location.search).get('focus') !== f, f1, { timeout: 10000 });
  const f2 = new URL(page.url()).searchParams.get('focus');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !new URLSearchParams(location.search).get('focus'), null, { timeout: 10000 });
  const f3 = new URL(page.url()).searchParams.get('focus');
  return f1 && f2 && f1 !== f2 && !f3;
});

await check('search highlights matches and shows their share', async () => {
  await page.fill('#search', 'sha256');
  await page.waitForFunction(() => /matches: [0-9.]+% of total/.test(document.querySelector('#share').textContent));
  const share = parseFloat((await page.$eval('#share', (s) => s.textContent)).match(/([0-9.]+)%/)[1]);
  await shot('explorer-search');
  return share > 0 && share <= 100;
});

await check('switching the sample type re-renders with that type: totals and top row of samples, as the API says', async () => {
  const before = await page.$eval('#summary', (s) => s.textContent);
  await page.selectOption('#sample', 'samples');
  await page.waitForFunction((b) => new URLSearchParams(location.search).get('sample') === 'samples' &&
    document.querySelector('#summary') && document.querySelector('#summary').textContent !== b, before, { timeout: 10000 });
  await page.waitForSelector('#top tbody tr');
  const summary = await page.$eval('#summary', (s) => s.textContent);
  const cells = await page.$$eval('#top tbody tr:first-child td', (t) => t.map((x) => x.textContent));
  const q = new URLSearchParams(new URL(page.url()).search);
  for (const k of VIEW) q.delete(k);
  const d = await api('/api/v1/render?' + q + '&top=2000');
  const ns = await api('/api/v1/render?' + q.toString().replace('sample=samples', 'sample=cpu') + '&top=1');
  const m = summary.match(/^(\d+) profiles, total (\S+?)(;|$)/);
  const bad = [];
  if (d.sampleType.type !== 'samples') bad.push(`API sample type ${d.sampleType.type}`);
  if (!m || +m[1] !== d.profiles || !near(m[2], d.total)) bad.push(`summary ${JSON.stringify(summary)}, API ${d.profiles} profiles, total ${d.total}`);
  if (d.total === ns.total) bad.push('samples and cpu totals are equal: the switch shows nothing');
  if (cells[0] !== d.top[0].name || !near(cells[1], d.top[0].flat)) bad.push(`top row ${cells.slice(0, 2)}, API ${d.top[0].name} ${d.top[0].flat}`);
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('top table sorts by a column and a row focuses the flame graph', async () => {
  await page.click('#top th[data-key=cum]');
  const names = await page.$$eval('#top tbody tr td:first-child', (t) => t.slice(0, 8).map((x) => x.textContent));
  // the rows' cum, from the API for the same view, must not increase down the table
  const q = new URLSearchParams(new URL(page.url()).search);
  for (const k of VIEW) q.delete(k);
  q.set('top', '20000');
  const cum = new Map((await api('/api/v1/render?' + q)).top.map((r) => [r.name, r.cum]));
  const vals = names.map((n) => cum.get(n));
  const sorted = vals.every((v, i) => v !== undefined && (i === 0 || vals[i - 1] >= v));
  if (!sorted) throw new Error(`not sorted by cum: ${names.map((n, i) => n + '=' + vals[i]).join(', ')}`);
  await page.click('#top tbody tr:nth-child(2)');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('focus'));
  return names.length > 1 && Math.max(...vals) === Math.max(...cum.values());
});

await check('flame graph toggle: the root at the bottom, each depth painted as wide as its frames\' totals', async () => {
  await page.goto(base + '/explorer?name=demo&type=cpu' + TO);
  await page.waitForSelector('#top tbody tr');
  await page.click('#layout');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('layout') === 'flame' && document.querySelector('#layout')?.getAttribute('aria-pressed') === 'true', null, { timeout: 10000 });
  await page.waitForSelector('#top tbody tr');
  const d = await api('/api/v1/render?name=demo&type=cpu&max_nodes=100000&top=1' + TO);
  const depths = [0, 1, 2, 3, 4, 5];
  const rows = Math.min(expectedRows(d, [], 1).maxDepth + 1, 400);
  const drawn = await flamePixels('#flame', depths.map((k) => rows - 1 - k));
  const want = expectedRows(d, depths, drawn.width);
  const bad = compareRows(drawn, want);
  if (drawn.rows[0] < drawn.width - 2) bad.push(`the bottom row (root) is not painted across: ${drawn.rows[0]} of ${drawn.width}`);
  const top = await flamePixels('#flame', [0]);
  if (rows > 6 && top.rows[0] >= drawn.width - 2) bad.push('the top row is painted across: still an icicle?');
  await shot('explorer-flame');
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('call tree: the root\'s children, and each node\'s opened down to one the API lists out of order, by total, with self and total as the API has them', async () => {
  await page.goto(base + '/explorer?name=demo&type=cpu' + TO);
  await page.waitForSelector('#top tbody tr');
  await page.click('#tab-tree');
  await page.waitForSelector('#tree tbody tr');
  const d = await api('/api/v1/render?name=demo&type=cpu&max_nodes=100000&top=1' + TO);
  const met = new Map(); // parent -> its children in the API's order
  d.nodes.forEach((n, i) => { if (!met.has(n[1])) met.set(n[1], []); met.get(n[1]).push(i); });
  const kidsOf = (p) => (met.get(p) || []).map((i) => [d.nodes[i], i]).sort((a, b) => b[0][3] - a[0][3]);
  const rowsAt = (depth) => page.$$eval(`#tree tbody tr[data-depth="${depth}"]`, (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent.replace(/^[▾▸·]/, ''))));
  const bad = [];
  const same = (got, want, what) => {
    if (got.length !== want.length) { bad.push(`${what}: ${got.length} rows, API ${want.length}`); return; }
    want.forEach(([n], k) => {
      const c = got[k];
      if (c[0] !== d.names[n[0]] || !near(c[1], n[2]) || !near(c[3], n[3])) bad.push(`${what} row ${k}: ${JSON.stringify(c)}, API ${d.names[n[0]]} self ${n[2]} total ${n[3]}`);
    });
  };
  // the API lists children in the order the tree met them; a check of "by total" needs a list
  // where that order is not already the sorted one: the shallowest such node (breadth first,
  // among the rows the page lists), opened along its path from the root
  // (among the first 500, the rows the page lists of a node)
  const unsorted = (p) => { const a = met.get(p) || []; return kidsOf(p).slice(0, 500).some(([, i], k) => i !== a[k]); };
  const from = new Map([[0, -1]]), queue = [0];
  let target = -1;
  while (queue.length && target < 0) {
    const p = queue.shift();
    if (unsorted(p)) { target = p; break; }
    for (const [, i] of kidsOf(p).slice(0, 500)) { from.set(i, p); queue.push(i); }
  }
  if (target < 0) throw new Error('precondition: the API lists every node\'s children by total already, so the order could not be checked');
  const path = [];
  for (let i = target; i > 0; i = from.get(i)) path.unshift(i);
  same(await rowsAt(1), kidsOf(0).slice(0, 500), 'depth 1');
  // open each node on the path: its children appear below it (one node open per depth)
  for (const [k, i] of path.entries()) {
    await page.click(`#tree tbody tr[data-node="${i}"]`);
    await page.waitForFunction((x) => document.querySelector(`#tree tbody tr[data-node="${x}"] button`)?.getAttribute('aria-expanded') === 'true', i);
    same(await rowsAt(k + 2), kidsOf(i).slice(0, 500), `depth ${k + 2}`);
  }
  if (new URL(page.url()).searchParams.get('table') !== 'tree') bad.push('table=tree is not in the URL');
  await shot('explorer-tree');
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

// The sandwich of W (go tool pprof -peek's numbers for one function): the tables of its direct
// callers and callees, the focus line, and both graphs as the answer the page drew from says
// (its own binary render response, decoded here). Returns what is wrong, and the answer.
async function sandwichOf(W) {
  const answered = page.waitForResponse((r) => r.url().includes('/api/v1/render?') && new URL(r.url()).searchParams.get('focus') === W.name, { timeout: 15000 });
  await page.goto(base + '/explorer?' + new URLSearchParams({ name: 'demo', type: 'cpu', to: frozenTo, table: 'sandwich', fn: W.name }));
  const pageAnswer = decodeRenderBinary(new Uint8Array(await (await answered).body()));
  await page.waitForSelector('#callees tbody tr', { timeout: 15000 });
  const bad = [];
  const rows = (sel) => page.$$eval(`${sel} tbody tr`, (rs) => rs.map((r) => [r.cells[0].textContent, r.cells[1].textContent]));
  for (const [sel, want] of [['#callers', W.callers], ['#callees', W.callees]]) {
    const got = await rows(sel);
    const names = got.map((r) => r[0]).sort(), wnames = Object.keys(want).sort();
    if (JSON.stringify(names) !== JSON.stringify(wnames)) bad.push(`${sel}: ${JSON.stringify(names)}, go -peek ${JSON.stringify(wnames)}`);
    for (const [n, v] of got) if (n in want && !near(v, want[n])) bad.push(`${sel} ${n}: ${v}, go -peek ${want[n]}`);
  }
  const info = await page.$eval('#focusinfo', (p) => p.textContent);
  const m = info.match(/ self (\S+) \([^)]*\), total (\S+) /);
  if (!m || !near(m[1], W.flat) || !near(m[2], W.cum) || !info.startsWith(W.name)) bad.push(`focus line ${JSON.stringify(info)}, go flat ${W.flat} cum ${W.cum}`);
  // the graphs: the root (the function) across, the first row as wide as its frames' totals in
  // the answer the page got (whose edges the tables above hold to go tool pprof -peek), shrunk
  // to fit where they add up to more than the root
  const f = pageAnswer.focus, graphs = [];
  for (const [sel, t, flip] of [['#callers-graph', f.callers, true], ['#callees-graph', f.callees, false]]) {
    const want = expectedRows(t, [0, 1], 1);
    const nrows = Math.min(want.maxDepth + 1, 14);
    const drawn = await flamePixels(sel, flip ? [nrows - 1, nrows - 2] : [0, 1]);
    const w = expectedRows(t, [0, 1], drawn.width);
    const b = compareRows(drawn, w);
    if (drawn.height !== nrows * 18) b.push(`canvas ${drawn.height} px high, want ${nrows} rows`);
    if (drawn.rows[0] < drawn.width - 2) b.push(`the root row has ${drawn.rows[0]} of ${drawn.width} px`);
    for (const x of b) bad.push(`${sel}: ${x}`);
    // which way up: the root's row (bottom for the callers, top for the callees) names the function
    await (await page.$(sel)).scrollIntoViewIfNeeded(); // (the mouse reaches only what is in the viewport)
    const gb = await (await page.$(sel)).boundingBox();
    await page.mouse.move(gb.x + gb.width / 2, gb.y + (flip ? gb.height - 9 : 9));
    const first = (await page.$eval('#tooltip', (tt) => (tt.hidden ? '' : tt.textContent))).split('\n')[0];
    if (first !== W.name) bad.push(`${sel}: the ${flip ? 'bottom' : 'top'} row is ${JSON.stringify(first)}, not the function`);
    graphs.push({ sel, t, flip, want: w, box: gb });
  }
  await page.mouse.move(0, 0);
  return { bad, f, graphs, rows };
}

await check('sandwich: a function\'s callers and callees with their values equal go tool pprof -peek; the callers\' graph (root at the bottom) and the callees\' paint their first rows as the API\'s trees', async () => {
  if (!S.name) throw new Error('go tool pprof named no function with callers and callees');
  const { bad, f, rows } = await sandwichOf(S);
  // a JSON render asked again, kept beside the page's for the record (docs/testing.md)
  const again = (await api('/api/v1/render?' + new URLSearchParams({ name: 'demo', type: 'cpu', to: frozenTo, focus: S.name, max_nodes: '100000', top: '2000' }))).focus;
  fs.writeFileSync(out + '/sandwich-answers.json', JSON.stringify({ page: f, again }));
  await shot('explorer-sandwich');
  // clicking a callee re-centres the sandwich on it
  const callee = (await rows('#callees'))[0][0];
  await page.click('#callees tbody tr:first-child');
  await page.waitForFunction((n) => new URLSearchParams(location.search).get('fn') === n && document.querySelector('#focusinfo')?.textContent.startsWith(n), callee, { timeout: 10000 });
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('sandwich of a function that calls itself through others (its callees add up to more than it, as pprof counts edges): the tables equal go tool pprof -peek, every callee is painted in its share of the row (hover names it), and the page says the graph shrank them', async () => {
  const R = S.recursive || {};
  if (!R.name) throw new Error('go tool pprof named no function whose callees add up to more than its cum');
  const { bad, graphs } = await sandwichOf(R);
  const g = graphs.find((x) => x.sel === '#callees-graph');
  if (!g.want.shrunk) bad.push(`precondition: the answer's callees tree has no frame whose children add up to more than it`);
  // each first-row callee, hovered in the middle of where its share puts it, is that callee
  const t = g.t, kids = t.nodes.map((nd, i) => [nd, i]).filter(([nd]) => nd[1] === 0);
  let hovered = 0;
  await (await page.$(g.sel)).scrollIntoViewIfNeeded();
  g.box = await (await page.$(g.sel)).boundingBox();
  for (const [nd, i] of kids) {
    const px = g.want.w[i] * g.box.width;
    if (px < 8) continue;
    await page.mouse.move(g.box.x + (g.want.x[i] + g.want.w[i] / 2) * g.box.width, g.box.y + 18 + 9);
    const name = (await page.$eval('#tooltip', (tt) => (tt.hidden ? '' : tt.textContent))).split('\n')[0];
    if (name !== t.names[nd[0]]) bad.push(`#callees-graph: at ${JSON.stringify(t.names[nd[0]])}'s place (${(100 * g.want.x[i]).toFixed(1)}%..${(100 * (g.want.x[i] + g.want.w[i])).toFixed(1)}% of the row) the graph shows ${JSON.stringify(name)}`);
    hovered++;
  }
  if (hovered < 2) bad.push(`only ${hovered} of the ${kids.length} callees are 8 px or wider`);
  await page.mouse.move(0, 0);
  const note = await page.$eval('#recursion', (p) => p.textContent).catch(() => '');
  if (!note.startsWith(R.name) || !/callees/.test(note)) bad.push(`the note on shrunk frames: ${JSON.stringify(note)}`);
  await shot('explorer-sandwich-recursive');
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('line view: the function\'s flat and cum per file:line equal go tool pprof -lines', async () => {
  if (!S.name) throw new Error('go tool pprof named no function');
  await page.goto(base + '/explorer?' + new URLSearchParams({ name: 'demo', type: 'cpu', to: frozenTo, table: 'lines', fn: S.name }));
  await page.waitForSelector('#lines tbody tr', { timeout: 15000 });
  const got = await page.$$eval('#lines tbody tr', (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
  const bad = [];
  const keys = got.map((r) => r[0]).sort(), want = Object.keys(S.lines).sort();
  if (!want.length || JSON.stringify(keys) !== JSON.stringify(want)) bad.push(`lines ${JSON.stringify(keys)}, go -lines ${JSON.stringify(want)}`);
  for (const r of got) {
    const w = S.lines[r[0]];
    if (w && (!near(r[1], w[0]) || !near(r[3], w[1]))) bad.push(`${r[0]}: flat ${r[1]} cum ${r[3]}, go ${w}`);
  }
  const flats = got.map((r) => (S.lines[r[0]] || [0])[0]);
  if (!flats.every((v, i) => i === 0 || flats[i - 1] >= v)) bad.push(`not hottest first: ${flats}`);
  await shot('explorer-lines');
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('at 1280 px wide the flame graph and the table sit side by side, nothing cut off; the handle resizes them (split in the URL)', async () => {
  const p = await ctx.newPage();
  await p.setViewportSize({ width: 1280, height: 900 });
  await p.goto(base + '/explorer?name=demo&type=cpu' + TO);
  await p.waitForSelector('#top tbody tr');
  const measure = () => p.evaluate(() => {
    const r = (s) => document.querySelector(s).getBoundingClientRect();
    const wrap = document.querySelector('#top').parentElement;
    const cells = [...document.querySelectorAll('#top th, #top tbody tr:nth-child(-n+50) td')];
    return { page: document.documentElement.scrollWidth, flame: r('#flame'), table: r('#top'), wrap: wrap.getBoundingClientRect(),
      overflow: wrap.scrollWidth - wrap.clientWidth, clipped: cells.filter((c) => c.getBoundingClientRect().right > wrap.getBoundingClientRect().right + 1 || c.scrollWidth > c.clientWidth + 1).length };
  });
  const bad = [];
  const ok = (m, what) => {
    if (m.page > 1280) bad.push(`${what}: the page is ${m.page} px wide`);
    if (m.overflow > 0 || m.clipped) bad.push(`${what}: the table overflows by ${m.overflow} px, ${m.clipped} cells cut`);
    if (!(m.flame.right <= m.wrap.left && Math.abs(m.flame.top - m.wrap.top) < 60)) bad.push(`${what}: flame ${JSON.stringify(m.flame)} and table ${JSON.stringify(m.wrap)} are not side by side`);
  };
  const m1 = await measure();
  ok(m1, 'at first');
  const hb = await (await p.$('#splitter')).boundingBox();
  await p.mouse.move(hb.x + hb.width / 2, hb.y + 30);
  await p.mouse.down();
  await p.mouse.move(hb.x - 200, hb.y + 30, { steps: 6 });
  await p.mouse.up();
  await p.waitForFunction(() => new URLSearchParams(location.search).get('split'));
  const m2 = await measure();
  ok(m2, 'after the drag');
  const split = +new URL(p.url()).searchParams.get('split');
  if (!(m2.flame.width < m1.flame.width - 150 && m2.wrap.width > m1.wrap.width + 150)) bad.push(`drag: flame ${m1.flame.width} -> ${m2.flame.width}, table ${m1.wrap.width} -> ${m2.wrap.width}`);
  // the flame graph is drawn again at its new width: its root row is painted across
  const px = await p.$eval('#flame', (c) => { const g = c.getContext('2d'); const d = g.getImageData(0, 3, c.width, 1).data; let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return [n, c.width]; });
  if (px[0] < px[1] - 2 || Math.abs(px[1] - m2.flame.width) > 3) bad.push(`after the drag the root row has ${px[0]} of ${px[1]} px painted, canvas ${m2.flame.width} px wide`);
  await p.goto(p.url());
  await p.waitForSelector('#top tbody tr');
  const m3 = await measure();
  if (Math.abs(m3.flame.width - m2.flame.width) > 3) bad.push(`the link with split=${split} lays out ${m3.flame.width} px, the drag ${m2.flame.width}`);
  await p.screenshot({ path: `${out}/explorer-1280.png`, fullPage: true });
  await p.close();
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('a view\'s whole state comes back from its URL (layout, table, sort, split, search, range)', async () => {
  const p = await ctx.newPage();
  await p.goto(base + '/explorer?' + new URLSearchParams({ name: 'demo', type: 'cpu', to: frozenTo, layout: 'flame', sort: 'cum', asc: '1', split: '40', search: 'sha256', range: '6h' }));
  await p.waitForSelector('#top tbody tr');
  const q = new URLSearchParams({ name: 'demo', type: 'cpu', to: frozenTo, top: '20000' });
  const cum = new Map((await api('/api/v1/render?' + q)).top.map((r) => [r.name, r.cum]));
  const names = await p.$$eval('#top tbody tr td:first-child', (t) => t.slice(0, 8).map((x) => x.textContent));
  const vals = names.map((n) => cum.get(n));
  const got = await p.evaluate(() => ({ layout: document.querySelector('#layout').getAttribute('aria-pressed'), search: document.querySelector('#search').value,
    share: document.querySelector('#share').textContent, split: document.querySelector('#splitter').getAttribute('aria-valuenow'),
    sort: document.querySelector('#top th[aria-sort="ascending"]')?.dataset.key, range: document.querySelector('#range').value }));
  await p.close();
  const bad = [];
  if (!vals.every((v, i) => v !== undefined && (i === 0 || vals[i - 1] <= v))) bad.push(`not ascending by cum: ${names.map((n, i) => n + '=' + vals[i])}`);
  if (got.layout !== 'true' || got.search !== 'sha256' || !/^matches: /.test(got.share) || got.split !== '40' || got.sort !== 'cum' || got.range !== '6h') bad.push(JSON.stringify(got));
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('the explorer with nothing picked opens on the busiest service\'s CPU over the last hour', async () => {
  const p = await ctx.newPage();
  await p.goto(base + '/explorer');
  await p.waitForSelector('#top tbody tr', { timeout: 15000 });
  const u = new URL(p.url()).searchParams;
  const opt = await p.$eval('#selection', (s) => s.value);
  await p.close();
  // the busiest: the largest sum of cpu totals of the last hour's records, per service (or target)
  const rows = await api(`/api/v1/profiles?type=cpu&limit=20000&from=${(Date.now() / 1000 - 3550).toFixed(0)}`);
  const sums = new Map();
  for (const r of rows) {
    const k = r.labels.__k8s_name ? `s:${r.labels.__k8s_namespace || ''}/${r.labels.__k8s_name}` : `t:${r.labels.monitor}`;
    sums.set(k, (sums.get(k) || 0) + r.totals[r.sampleTypes.split(',').findIndex((t) => t.startsWith('cpu/'))]);
  }
  const want = [...sums.entries()].sort((a, b) => b[1] - a[1])[0];
  const got = u.get('__k8s_name') ? `s:${u.get('__k8s_namespace')}/${u.get('__k8s_name')}` : `t:${u.get('name')}`;
  if (!want || got !== want[0] || opt !== want[0] || u.get('type') !== 'cpu' || u.get('range') !== '1h') throw new Error(`opened ${u}, select ${opt}; busiest ${JSON.stringify(want)} of ${JSON.stringify([...sums])}`);
  return true;
});

await check('download gives a pprof file', async () => {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const path = `${out}/download.pb.gz`;
  await dl.saveAs(path);
  const b = fs.readFileSync(path);
  return b.length > 100 && b[0] === 0x1f && b[1] === 0x8b;
});

await check('"Download default.pgo" gives /api/v1/pgo of the same selection, named default.pgo', async () => {
  const href = await page.$eval('#pgo', (a) => a.getAttribute('href'));
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#pgo')]);
  const path = `${out}/default.pgo`;
  await dl.saveAs(path);
  const b = fs.readFileSync(path);
  const q = new URL(href, base).searchParams, want = new URLSearchParams(new URL(page.url()).search);
  for (const k of VIEW) want.delete(k);
  want.delete('sample');
  const bad = [];
  if (dl.suggestedFilename() !== 'default.pgo') bad.push(`file name ${dl.suggestedFilename()}`);
  if (!href.startsWith('/api/v1/pgo?') || q.toString() !== want.toString()) bad.push(`link ${href}, view ${want}`);
  if (!(b.length > 100 && b[0] === 0x1f && b[1] === 0x8b)) bad.push(`${b.length} bytes, not gzip`);
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('the go tool pprof command is shown for the same selection', async () => {
  const cmd = await page.$eval('#command', (c) => c.textContent);
  return cmd.startsWith("go tool pprof '") && cmd.includes('/api/v1/profile?') && cmd.includes('name=demo');
});

await check('compare mode draws a diff flame graph and a delta table', async () => {
  // base: the older half of what is stored; comparison: the newer half
  const rows = await api('/api/v1/profiles?type=cpu&name=demo' + TO);
  const mid = rows[Math.floor(rows.length / 2)].endUnixNano;
  await page.goto(base + '/compare?' + new URLSearchParams({ name: 'demo', type: 'cpu', base_from: '0', base_to: sec(mid - 1),
    from: sec(mid), to: frozenTo }));
  await page.waitForSelector('#top tbody tr', { timeout: 15000 });
  const headers = await page.$$eval('#top th', (t) => t.map((x) => x.textContent));
  await shot('compare');
  // the biggest change first, with the API's base, comparison and delta for that function
  const q = new URLSearchParams({ name: 'demo', type: 'cpu', base_from: '0', base_to: sec(mid - 1), from: sec(mid), to: frozenTo });
  const d = await api('/api/v1/render?' + q + '&max_nodes=100000&top=2000');
  const cells = await page.$$eval('#top tbody tr:first-child td', (t) => t.map((x) => x.textContent));
  const row = d.top.find((r) => r.name === cells[0]);
  const maxDelta = Math.max(...d.top.map((r) => Math.abs(r.flat - r.baseFlat)));
  const summary = await page.$eval('#summary', (s) => s.textContent);
  const m = summary.match(/^(\d+) profiles, total (\S+); base (\d+) profiles, total (\S+?)(;|$)/);
  const bad = [];
  if (!headers.includes('Δ flat') || (await page.$('.legend')) === null) bad.push(`headers ${headers}`);
  if (!row) bad.push(`first row ${cells[0]} is not in the API's answer`);
  else {
    if (Math.abs(row.flat - row.baseFlat) !== maxDelta) bad.push(`first row ${cells[0]} changed by ${row.flat - row.baseFlat}, the biggest change is ${maxDelta}`);
    if (!near(cells[1], row.baseFlat) || !near(cells[2], row.flat) || !near(cells[3].replace(/^\+/, ''), row.flat - row.baseFlat))
      bad.push(`row ${cells}, API base ${row.baseFlat} flat ${row.flat}`);
  }
  if (!m || +m[1] !== d.profiles || !near(m[2], d.total) || +m[3] !== d.baseProfiles || !near(m[4], d.baseTotal))
    bad.push(`summary ${JSON.stringify(summary)}, API ${d.profiles}/${d.total} base ${d.baseProfiles}/${d.baseTotal}`);
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('diff flame graph: each frame red where its share of the total grew, green where it shrank (from the API\'s numbers)', async () => {
  // the page of the compare check above: one tree of base and comparison, frames as wide as
  // both totals together (the layout the page documents), coloured by the change of share
  const q = new URLSearchParams(new URL(page.url()).search);
  for (const k of VIEW) q.delete(k);
  const d = await api('/api/v1/render?' + q + '&max_nodes=100000&top=1');
  const n = d.nodes.length, x = new Float64Array(n), w = new Float64Array(n), depth = new Int32Array(n), kids = Array.from({ length: n }, () => []);
  const width = (i) => Math.abs(d.nodes[i][3]) + Math.abs(d.nodes[i][5]);
  for (let i = 1; i < n; i++) { kids[d.nodes[i][1]].push(i); depth[i] = depth[d.nodes[i][1]] + 1; }
  w[0] = 1;
  for (let i = 0; i < n; i++) { let off = x[i]; for (const k of kids[i]) { w[k] = w[i] * width(k) / (width(i) || 1); x[k] = off; off += w[k]; } }
  const cw = await page.$eval('#flame', (c) => c.width);
  const probes = [];
  for (let i = 1; i < n; i++) {
    const ds = d.nodes[i][3] / d.total - d.nodes[i][5] / d.baseTotal;
    if (depth[i] <= 6 && w[i] * cw >= 12 && Math.abs(ds) > 1e-6) probes.push({ i, ds, px: Math.round((x[i] + w[i] / 2) * cw), py: depth[i] * 18 + 1 });
  }
  const colours = await page.$eval('#flame', (c, ps) => { const g = c.getContext('2d'); return ps.map((p) => [...g.getImageData(p.px, p.py, 1, 1).data]); }, probes);
  const bad = [];
  let grew = 0, shrank = 0;
  probes.forEach((p, k) => {
    const [r, g] = colours[k];
    const ok = p.ds > 0 ? r > g + 10 : g > r + 10;
    p.ds > 0 ? grew++ : shrank++;
    if (!ok) bad.push(`${d.names[d.nodes[p.i][0]]}: share ${p.ds > 0 ? 'grew' : 'shrank'} by ${(100 * p.ds).toFixed(3)} points, drawn rgb(${colours[k].slice(0, 3)})`);
  });
  // saturation by size: the frame whose share changed most is drawn more saturated than the least
  const sat = ([r, g, b]) => Math.max(r, g, b) - Math.min(r, g, b);
  const by = probes.map((p, k) => [Math.abs(p.ds), sat(colours[k])]).sort((a, b) => a[0] - b[0]);
  if (by.length >= 2 && !(by.at(-1)[1] > by[0][1])) bad.push(`the largest change (${by.at(-1)}) is not more saturated than the smallest (${by[0]})`);
  if (!grew || !shrank) bad.push(`${grew} frames grew and ${shrank} shrank among the ${probes.length} probed: nothing to tell the colours apart`);
  // hover names both values
  const p0 = probes[0];
  const box = await (await page.$('#flame')).boundingBox();
  await page.mouse.move(box.x + p0.px + 1, box.y + p0.py + 8);
  const tipText = await page.$eval('#tooltip', (t) => t.textContent);
  await page.mouse.move(0, 0);
  const m = tipText.match(/\ntotal (\S+) .*\n[^]*base total (\S+) /);
  if (!m || !near(m[1], d.nodes[p0.i][3]) || !near(m[2], d.nodes[p0.i][5])) bad.push(`hover ${JSON.stringify(tipText)}, API total ${d.nodes[p0.i][3]} base ${d.nodes[p0.i][5]}`);
  // the table sorts by the change of share: biggest first, as the API's numbers say
  await page.click('#top th[data-key=dshare]');
  const names = await page.$$eval('#top tbody tr td:first-child', (t) => t.slice(0, 8).map((x) => x.textContent));
  const all = await api('/api/v1/render?' + q + '&top=20000');
  const dsh = new Map(all.top.map((r) => [r.name, Math.abs(r.flat / all.total - r.baseFlat / all.baseTotal)]));
  const vals = names.map((nm) => dsh.get(nm));
  if (!vals.every((v, i) => v !== undefined && (i === 0 || vals[i - 1] >= v - 1e-12)) || Math.abs(vals[0] - Math.max(...dsh.values())) > 1e-12)
    bad.push(`not sorted by the change of share: ${names.map((nm, i) => nm + '=' + vals[i]).join(', ')}`);
  await shot('compare-diff');
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('deploy to deploy: "compare with the previous version" compares the newest version with the one before (the same service both sides); regressions as the API has them', async () => {
  // a fixed end, so the page and the API see the same records while scraping goes on
  const cartTo = Math.max(...(await api('/api/v1/profiles?type=heap&__k8s_namespace=store&__k8s_name=cart')).map((r) => r.endUnixNano));
  const to = `${Math.floor(cartTo / 1e9) + 1}`;
  await page.goto(base + '/explorer?' + new URLSearchParams({ __k8s_namespace: 'store', __k8s_name: 'cart', type: 'heap', to }));
  await page.waitForSelector('#prevversion', { timeout: 15000 });
  // versions of the service, oldest first by when each was first seen
  const first = new Map();
  for (const s of await api('/api/v1/series?__k8s_namespace=store&__k8s_name=cart'))
    first.set(s.labels.version, Math.min(first.get(s.labels.version) ?? Infinity, s.firstUnixNano));
  const vs = [...first.keys()].sort((a, b) => first.get(a) - first.get(b) || (a < b ? -1 : 1));
  await page.click('#prevversion');
  await page.waitForURL(/\/compare\?/);
  await page.waitForSelector('#regressions tbody tr', { timeout: 15000 });
  const u = new URL(page.url()).searchParams;
  const bad = [];
  if (vs.length !== 2 || u.get('version') !== vs[1] || u.get('base_version') !== vs[0] || u.get('__k8s_name') !== 'cart' || u.get('base___k8s_name') !== 'cart' ||
      u.get('to') !== to || u.get('base_to') !== to)
    bad.push(`URL ${u}, versions ${vs}`);
  const q = new URLSearchParams(u);
  for (const k of VIEW) q.delete(k);
  const d = await api('/api/v1/render?' + q + '&top=1');
  const summary = await page.$eval('#summary', (s) => s.textContent);
  const m = summary.match(/^(\d+) profiles, total (\S+); base (\d+) profiles, total (\S+?)(;|$)/);
  const byVersion = async (v) => (await api(`/api/v1/profiles?type=heap&__k8s_namespace=store&__k8s_name=cart&to=${to}&version=${encodeURIComponent(v)}`)).length;
  if (!m || +m[1] !== d.profiles || +m[3] !== d.baseProfiles || !near(m[2], d.total) || !near(m[4], d.baseTotal)) bad.push(`summary ${summary}, API ${JSON.stringify([d.profiles, d.total, d.baseProfiles, d.baseTotal])}`);
  // each side holds that version's records
  if (!(d.profiles > 0 && d.profiles === await byVersion(vs[1]) && d.baseProfiles === await byVersion(vs[0]))) bad.push(`profiles ${d.profiles}/${d.baseProfiles}`);
  const r = await api('/api/v1/regressions?' + q + '&limit=20');
  const rows = await page.$$eval('#regressions tbody tr', (rs) => rs.map((x) => [...x.cells].map((c) => c.textContent)));
  const want = r.functions.map((f) => [f.name, (100 * f.change).toFixed(2)]);
  const got = rows.filter((x) => x.length > 1).map((x) => [x[0], x[3].replace(/^\+/, '').replace('%', '')]);
  if (JSON.stringify(got) !== JSON.stringify(want.map(([n, c]) => [n, c]))) bad.push(`regressions ${JSON.stringify(got).slice(0, 300)}, API ${JSON.stringify(want).slice(0, 300)}`);
  await shot('compare-versions');
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

// the total the page's summary shows, read back
const summaryTotal = async () => (await page.$eval('#summary', (x) => x.textContent)).match(/^\d+ profiles, total (\S+?)(;|$)/)[1];
const rerendered = async (old) => page.waitForFunction((el) => !el.isConnected && document.querySelector('#summary'), old, { timeout: 15000 });

await check('label filters: KEY=VALUE and KEY!=VALUE (chips in the URL) change the total as the API says; the two add up to the whole', async () => {
  await page.goto(base + '/explorer?name=demo&type=cpu' + TO);
  await page.waitForFunction(() => [...document.querySelectorAll('#tagkey option')].some((o) => o.value === 'handler'), null, { timeout: 15000 });
  const tags = await api('/api/v1/tags?name=demo&type=cpu&sample=cpu' + TO);
  const handler = tags.keys.find((k) => k.key === 'handler');
  const value = handler.values[0].value;
  const q = (extra) => api('/api/v1/render?name=demo&type=cpu&top=1&max_nodes=1' + TO + extra);
  const [all, eq, ne] = await Promise.all([q(''), q('&tag=' + encodeURIComponent(`handler=${value}`)), q('&tag=' + encodeURIComponent(`handler!=${value}`))]);
  const bad = [];
  const addFilter = async (op) => {
    const old = await page.$('#summary');
    await page.selectOption('#tagkey', 'handler');
    await page.selectOption('#tagvalue', value);
    await page.selectOption('#tagop', op);
    await page.click('#tagadd');
    await rerendered(old);
    await page.waitForSelector('#top tbody tr');
  };
  await addFilter('=');
  const u1 = new URL(page.url()).searchParams.getAll('tag'), t1 = await summaryTotal();
  if (JSON.stringify(u1) !== JSON.stringify([`handler=${value}`]) || !near(t1, eq.total)) bad.push(`= : URL ${u1}, total ${t1}, API ${eq.total}`);
  await shot('explorer-labels');
  let old = await page.$('#summary');
  await page.click('#labels button.chip');
  await rerendered(old);
  await addFilter('!=');
  const u2 = new URL(page.url()).searchParams.getAll('tag'), t2 = await summaryTotal();
  if (JSON.stringify(u2) !== JSON.stringify([`handler!=${value}`]) || !near(t2, ne.total)) bad.push(`!= : URL ${u2}, total ${t2}, API ${ne.total}`);
  if (eq.total + ne.total !== all.total || !(eq.total > 0 && ne.total > 0)) bad.push(`API: ${eq.total} + ${ne.total} != ${all.total}`);
  if (!(handler.values.length >= 2)) bad.push(`handler has ${handler.values.length} values`);
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('group by a label: one root frame per value as the API has them, one timeline line per value', async () => {
  await page.goto(base + '/explorer?name=demo&type=cpu' + TO);
  await page.waitForFunction(() => [...document.querySelectorAll('#groupby option')].some((o) => o.value === 'handler'), null, { timeout: 15000 });
  const old = await page.$('#summary');
  await page.selectOption('#groupby', 'handler');
  await rerendered(old);
  await page.waitForSelector('#tllegend em.group', { timeout: 15000 });
  const d = await api('/api/v1/render?name=demo&type=cpu&group_by=handler&max_nodes=100000&top=1' + TO);
  const tl = await api('/api/v1/timeline?name=demo&type=cpu&sample=cpu&group_by=handler' + TO);
  const bad = [];
  const roots = d.nodes.filter((n) => n[1] === 0).map((n) => d.names[n[0]]);
  const drawn = await flamePixels('#flame', [0, 1]);
  const b = compareRows(drawn, expectedRows(d, [0, 1], drawn.width));
  if (b.length) bad.push(...b);
  const groups = (await page.$$eval('#tllegend em.group', (g) => g.map((x) => x.textContent))).sort();
  const want = [...new Set(tl.map((s) => s.tag.handler))].map((v) => (v === '' ? '(none)' : v)).sort();
  if (JSON.stringify(groups) !== JSON.stringify(want) || want.length < 2) bad.push(`timeline lines ${JSON.stringify(groups)}, API ${JSON.stringify(want)}`);
  if (roots.length !== want.length) bad.push(`root frames ${JSON.stringify(roots)} for values ${JSON.stringify(want)}`);
  await shot('explorer-groupby');
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

// The function-over-time chart (#fntimeline) against the API's timeline with function=: summed
// over the selection per end time (the tooltip's self and total share and values), or per pod
// (each pod's line in the tooltip: the pod's point nearest the pointer). q: the API's selection.
async function fnSeriesBad(q, fn, perPod) {
  await page.waitForFunction(() => +(document.querySelector('#fntimeline')?.dataset.points || 0) >= 2, null, { timeout: 15000 });
  const tl = await api('/api/v1/timeline?' + new URLSearchParams({ ...q, sample: 'cpu', to: frozenTo, function: fn }));
  const pods = new Map(); // pod (or '' summed) -> end -> [total, flat, cum]
  for (const s of tl) {
    const key = perPod ? String(s.labels.pod ?? s.labels.monitor) : '';
    const by = pods.get(key) || new Map();
    pods.set(key, by);
    s.points.forEach(([, end, v], k) => { const p = by.get(end) || [0, 0, 0]; p[0] += v; p[1] += s.flat[k]; p[2] += s.cum[k]; by.set(end, p); });
  }
  const ends = [...pods.values()].flatMap((by) => [...by.keys()]).sort((a, b) => a - b);
  const box = await (await page.$('#fntimeline')).boundingBox();
  const bad = [];
  let matched = 0, differ = 0; // differ: matched points whose self and total differ (a leaf's are equal)
  for (const [pod, by] of pods) {
    let podMatched = 0;
    for (const [end, [tot, flat, cum]] of [...by.entries()].sort((a, b) => a[0] - b[0])) {
      const x = TL.L + (box.width - TL.L - TL.R) * (end - ends[0]) / (ends.at(-1) - ends[0]);
      await page.mouse.move(box.x + x, box.y + 60);
      const text = await page.$eval('#tooltip', (t) => (t.hidden ? '' : t.textContent));
      let m;
      if (!perPod) m = text.match(/\nself ([0-9.]+)% \((\S+)\)\ntotal ([0-9.]+)% \((\S+)\)\nof (\S+)$/);
      else {
        const line = text.split('\n').find((l) => l.startsWith(pod + ': self '));
        m = line && line.slice(pod.length).match(/^: self ([0-9.]+)% \((\S+)\), total ([0-9.]+)% \((\S+)\) of (\S+)$/);
      }
      if (!m) { bad.push(`no tooltip${perPod ? ' line for pod ' + pod : ''} at ${end}: ${JSON.stringify(text)}`); continue; }
      if (Math.abs(+m[1] - 100 * flat / tot) > 0.005 + 1e-9 || Math.abs(+m[3] - 100 * cum / tot) > 0.005 + 1e-9 || !near(m[2], flat) || !near(m[4], cum) || !near(m[5], tot))
        bad.push(`${pod} at ${end}: ${JSON.stringify(text)}, API flat ${flat} cum ${cum} of ${tot}`);
      else { podMatched++; if (flat !== cum) differ++; }
    }
    if (podMatched < 2) bad.push(`${perPod ? 'pod ' + pod : 'summed'}: ${podMatched} points matched of ${by.size}`);
    matched += podMatched;
  }
  await page.mouse.move(0, 0);
  return { bad, pods: [...pods.keys()], matched, differ, tl };
}

await check('function over time: picking a function draws its self and total share per point, as the API\'s flat/total and cum/total', async () => {
  await page.goto(base + '/explorer?name=demo&type=cpu' + TO);
  await page.waitForSelector('#top tbody tr');
  // a function whose self and total differ (the top row is a leaf: self = total would hide a
  // swap): the row with self > 0 and the most total beyond it, clicked in the table
  const d = await api('/api/v1/render?name=demo&type=cpu&max_nodes=1&top=2000' + TO);
  const fn = d.top.filter((r) => r.flat > 0).reduce((b, r) => (!b || r.cum - r.flat > b.cum - b.flat ? r : b), null).name;
  const row = await page.$$eval('#top tbody tr td:first-child', (t, n) => t.findIndex((x) => x.textContent === n), fn);
  if (row < 0) throw new Error(`${fn} is not in the top table`);
  await page.click(`#top tbody tr:nth-child(${row + 1})`);
  const { bad, differ } = await fnSeriesBad({ name: 'demo', type: 'cpu' }, fn, false);
  if (differ < 2) bad.push(`${fn}: ${differ} matched points whose self and total differ`);
  if (new URL(page.url()).searchParams.get('fn') !== fn || (await page.$eval('#fnname', (x) => x.textContent)) !== fn) bad.push('fn is not in the URL or the title');
  await shot('explorer-function-over-time');
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('function over time per pod: "per pod" draws one self and total line per pod of the service, each point as the API\'s entry of that pod', async () => {
  const q = { __k8s_namespace: 'shop', __k8s_name: 'checkout', type: 'cpu' };
  await page.goto(base + '/explorer?' + new URLSearchParams(q) + TO);
  await page.waitForSelector('#top tbody tr');
  const fn = await page.$eval('#top tbody tr:first-child td', (t) => t.textContent);
  await page.click('#top tbody tr:first-child');
  await page.waitForFunction(() => +(document.querySelector('#fntimeline')?.dataset.points || 0) >= 2, null, { timeout: 15000 });
  // summed: one line (the pods' points may lie a pixel apart, so hover is checked per pod below
  // and summed on one target by the check above)
  const summedLines = await page.$eval('#fntimeline', (c) => c.dataset.lines);
  await page.selectOption('#fnby', 'pod');
  await page.waitForFunction(() => +(document.querySelector('#fntimeline')?.dataset.lines || 0) >= 2, null, { timeout: 15000 });
  const { bad, pods, tl } = await fnSeriesBad(q, fn, true);
  if (summedLines !== '1') bad.push(`summed: ${summedLines} lines drawn`);
  const legend = await page.$$eval('#fnlegend em.pod', (e) => e.map((x) => x.textContent));
  const want = [...new Set(tl.map((s) => s.labels.pod))].sort();
  if (JSON.stringify(want) !== JSON.stringify(['checkout-0', 'checkout-1'])) bad.push(`the API's pods ${JSON.stringify(want)}`);
  if (JSON.stringify(legend) !== JSON.stringify(want) || JSON.stringify([...pods].sort()) !== JSON.stringify(want)) bad.push(`legend ${JSON.stringify(legend)}, pods ${JSON.stringify(pods)}`);
  const u = new URL(page.url()).searchParams;
  if (u.get('fnby') !== 'pod' || u.get('fn') !== fn) bad.push(`URL ${page.url()}`);
  await shot('explorer-function-per-pod');
  // the view comes back from its URL
  await page.reload();
  await page.waitForFunction(() => +(document.querySelector('#fntimeline')?.dataset.lines || 0) >= 2, null, { timeout: 15000 });
  if ((await page.$eval('#fnby', (s) => s.value)) !== 'pod') bad.push('fnby=pod did not survive a reload');
  await page.selectOption('#fnby', '');
  await page.waitForFunction(() => document.querySelector('#fntimeline')?.dataset.lines === '1', null, { timeout: 15000 }).catch(() => {});
  if ((await page.$eval('#fntimeline', (c) => c.dataset.lines)) !== '1' || new URL(page.url()).searchParams.has('fnby')) bad.push('back to summed: not one line');
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('search picks the function over time: Enter on an exact name, and on a substring (its match with the largest total), sets fn and draws the API\'s series', async () => {
  await page.goto(base + '/explorer?name=demo&type=cpu' + TO);
  await page.waitForSelector('#top tbody tr');
  const d = await api('/api/v1/render?name=demo&type=cpu&max_nodes=1&top=2000' + TO);
  const bad = [];
  // an exact name that is not the first row (no click picked it)
  const exact = d.top[Math.min(2, d.top.length - 1)].name;
  await page.fill('#search', exact);
  await page.press('#search', 'Enter');
  await page.waitForFunction((n) => document.querySelector('#fnname')?.textContent === n, exact, { timeout: 10000 });
  const r1 = await fnSeriesBad({ name: 'demo', type: 'cpu' }, exact, false);
  bad.push(...r1.bad.map((b) => `${exact}: ${b}`));
  if (new URL(page.url()).searchParams.get('fn') !== exact) bad.push(`Enter on ${exact}: URL ${page.url()}`);
  // a substring: the matching function with the largest cum in the API's top table
  const sub = d.top.map((r) => r.name).find((n) => n.includes('.') && n !== exact && n.split('.').pop().length >= 4);
  const term = sub.split('.').pop().slice(0, 4).toUpperCase();
  const matches = d.top.filter((r) => r.name.toLowerCase().includes(term.toLowerCase()));
  const want = matches.reduce((b, r) => (!b || Math.abs(r.cum) > Math.abs(b.cum) ? r : b), null).name;
  await page.fill('#search', term);
  await page.click('#searchfn');
  await page.waitForFunction((n) => document.querySelector('#fnname')?.textContent === n, want, { timeout: 10000 }).catch(() => {});
  const got = new URL(page.url()).searchParams.get('fn');
  if (got !== want) bad.push(`search ${JSON.stringify(term)} (${matches.length} matches): fn=${got}, want ${want}`);
  else bad.push(...(await fnSeriesBad({ name: 'demo', type: 'cpu' }, want, false)).bad.map((b) => `${want}: ${b}`));
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('dashboard shows one card per service (as /api/v1/series has them), each with painted small flame graphs', async () => {
  await page.goto(base + '/dashboard');
  await page.waitForSelector('#cards .card canvas');
  const series = await api('/api/v1/series');
  const services = [...new Set(series.map((s) => (s.labels.__k8s_name ? `${s.labels.__k8s_namespace || ''}/${s.labels.__k8s_name}` : s.labels.monitor)))].sort();
  const canvases = series.filter((s, i, a) => a.findIndex((x) => JSON.stringify([x.labels.__k8s_namespace, x.labels.__k8s_name, x.labels.__k8s_name ? '' : x.labels.monitor, x.profileType]) ===
    JSON.stringify([s.labels.__k8s_namespace, s.labels.__k8s_name, s.labels.__k8s_name ? '' : s.labels.monitor, s.profileType])) === i).length;
  // every small graph painted: its first row has pixels
  await page.waitForFunction((n) => {
    const cs = [...document.querySelectorAll('#cards .card canvas')];
    return cs.length === n && cs.every((c) => c.width > 0 && c.getContext('2d').getImageData(0, 3, c.width, 1).data.some((v, i) => i % 4 === 3 && v > 0));
  }, canvases, { timeout: 15000 });
  await shot('dashboard');
  const titles = await page.$$eval('#cards .card h2', (h) => h.map((x) => x.textContent).sort());
  if (JSON.stringify(titles) !== JSON.stringify(services)) throw new Error(`cards ${JSON.stringify(titles)}, services ${JSON.stringify(services)}`);
  // four services here and edge/remote, which only the peer (another shard) holds
  return services.length === 5 && services.includes('edge/remote');
});

await check('hostile names and labels are shown as text on every page, /raw included; nothing becomes markup', async () => {
  const bad = [];
  const visit = async (path, what) => {
    await page.goto(base + path);
    await page.waitForLoadState('networkidle');
    const found = await injected();
    if (found.length) bad.push(`${what}: injected ${found.join(', ')}`);
  };
  await visit('/targets', 'targets');
  const cells = await page.$$eval('#targets td', (t) => t.map((x) => x.textContent));
  if (!cells.includes(P.monitor) || !cells.includes(P.svc) || !cells.includes(P.ns)) bad.push(`targets do not show the names as text: ${JSON.stringify(cells.slice(0, 16))}`);
  await visit('/explorer?' + new URLSearchParams({ name: P.monitor, type: 'heap' }), 'explorer');
  const fns = await page.$$eval('#top td', (t) => t.map((x) => x.textContent));
  if (!fns.includes(P.fn)) bad.push(`explorer does not show the function name as text: ${JSON.stringify(fns.slice(0, 6))}`);
  const cmd = await page.$eval('#command', (c) => c.textContent);
  if (!cmd.includes(new URLSearchParams({ name: P.monitor }).toString())) bad.push(`the go tool pprof command does not encode the name: ${cmd}`);
  // sample labels: the key in the label select, the value as a filter chip and a timeline group
  await page.waitForFunction(() => document.querySelectorAll('#tagkey option').length > 1, null, { timeout: 10000 }).catch(() => {});
  const kopts = await page.$$eval('#tagkey option', (o) => o.map((x) => x.textContent));
  if (!kopts.includes(P.lkey)) bad.push(`the label select does not show the key as text: ${JSON.stringify(kopts)}`);
  const vopts = await page.$$eval('#version option', (o) => o.map((x) => x.textContent));
  if (!vopts.includes('version ' + P.version)) bad.push(`the version select does not show the version as text: ${JSON.stringify(vopts)}`);
  const tq = new URLSearchParams({ name: P.monitor, type: 'heap', group_by: P.lkey, tag: `${P.lkey}=${P.lval}` });
  await visit('/explorer?' + tq, 'explorer with a label filter and group-by');
  await page.waitForSelector('#tllegend em.group', { timeout: 10000 }).catch(() => {});
  const chips = await page.$$eval('#labels button.chip', (b) => b.map((x) => x.dataset.tag));
  const groups = await page.$$eval('#tllegend em.group', (g) => g.map((x) => x.textContent));
  if (!chips.includes(`${P.lkey}=${P.lval}`) || !groups.includes(P.lval)) bad.push(`label chip ${JSON.stringify(chips)}, groups ${JSON.stringify(groups)}`);
  // the function over time per pod: the function's name in its title, the pod's in the legend
  await visit('/explorer?' + new URLSearchParams({ name: P.monitor, type: 'heap', fn: P.fn, fnby: 'pod' }), 'explorer with a function over time per pod');
  await page.waitForSelector('#fnlegend em.pod', { timeout: 10000 }).catch(() => {});
  const fnTitle = await page.$eval('#fnname', (x) => x.textContent).catch(() => null);
  const podNames = await page.$$eval('#fnlegend em.pod', (e) => e.map((x) => x.textContent));
  if (fnTitle !== P.fn || JSON.stringify(podNames) !== JSON.stringify([P.pod])) bad.push(`function over time: title ${JSON.stringify(fnTitle)}, pods ${JSON.stringify(podNames)}`);
  if ((await injected()).length) bad.push(`function over time: injected ${(await injected()).join(', ')}`);
  if ((await injected()).length) bad.push(`labels: injected ${(await injected()).join(', ')}`);
  await visit('/compare?' + new URLSearchParams({ name: P.monitor, type: 'heap', base_from: '0', base_to: '9000000000', from: '0' }), 'compare');
  await page.waitForSelector('#top tbody tr');
  await visit('/dashboard', 'dashboard');
  await page.waitForSelector('#cards .card h2');
  const titles = await page.$$eval('#cards .card h2', (h) => h.map((x) => x.textContent));
  if (!titles.includes(`${P.ns}/${P.svc}`)) bad.push(`dashboard titles ${JSON.stringify(titles)}`);
  // /raw is HTML the server builds from label values: escaped text in the cells, and links
  // whose parameters carry the values exactly
  await visit('/raw', 'raw');
  const raw = await page.$$eval('table tr', (rs) => rs.slice(1).map((r) => ({ labels: r.cells[0].textContent, type: r.cells[1].textContent,
    href: r.querySelector('a') && r.querySelector('a').getAttribute('href') })));
  const hostile = raw.filter((r) => { try { return JSON.parse(r.labels).monitor === P.monitor; } catch { return false; } });
  if (hostile.length !== 1) bad.push(`/raw rows for the hostile target: ${JSON.stringify(raw).slice(0, 400)}`);
  else {
    const l = JSON.parse(hostile[0].labels), q = new URL(hostile[0].href, base).searchParams;
    if (l.__k8s_name !== P.svc || l.__k8s_namespace !== P.ns || l.pod !== P.pod) bad.push(`/raw labels ${hostile[0].labels}`);
    if (q.get('monitor') !== P.monitor || q.get('__k8s_name') !== P.svc || q.get('pod') !== P.pod || q.get('type') !== 'heap')
      bad.push(`/raw link ${hostile[0].href}`);
  }
  await shot('xss');
  if (dialogs.length) bad.push('a dialog opened: ' + dialogs.join(', '));
  if (await page.evaluate(() => window.__xss)) bad.push('window.__xss was set');
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('text that is not UTF-8: the explorer shows each function and sample type made valid (U+FFFD per bad sequence), ' +
  'as go tool pprof names them; its flame graph and dashboard card are drawn', async () => {
  const bad = [];
  await page.goto(base + '/explorer?' + new URLSearchParams({ name: 'badtext', type: 'heap' }));
  await page.waitForSelector('#top tbody tr', { timeout: 15000 });
  const names = (await page.$$eval('#top tbody tr td:first-child', (t) => t.map((x) => x.textContent))).sort();
  const want = [...W.names].sort();
  if (!want.length || JSON.stringify(names) !== JSON.stringify(want)) bad.push(`top table ${JSON.stringify(names)}, want ${JSON.stringify(want)}`);
  const opts = await page.$$eval('#sample option', (o) => o.map((x) => x.textContent));
  const wantOpts = W.types.map(([t, u]) => `${t} (${u})`);
  if (JSON.stringify(opts) !== JSON.stringify(wantOpts)) bad.push(`sample types ${JSON.stringify(opts)}, want ${JSON.stringify(wantOpts)}`);
  const drawn = await flamePixels('#flame', [0, 1]);
  if (drawn.rows[0] < drawn.width - 2 || drawn.rows[1] === 0) bad.push(`flame graph rows painted: ${drawn.rows} of ${drawn.width}`);
  await shot('badtext');
  await page.goto(base + '/dashboard');
  await page.waitForSelector('#cards .card h2');
  const card = await page.waitForFunction(() => {
    const c = [...document.querySelectorAll('#cards .card')].find((x) => x.querySelector('h2').textContent === 'badtext');
    if (!c) return null;
    const cv = c.querySelector('canvas');
    const painted = cv && cv.width > 0 && cv.getContext('2d').getImageData(0, 3, cv.width, 1).data.some((v, i) => i % 4 === 3 && v > 0);
    return c.querySelector('.err') ? { err: c.querySelector('.err').textContent } : painted ? { ok: true } : null;
  }, null, { timeout: 15000 }).then((h) => h.jsonValue()).catch((e) => ({ err: e.message }));
  if (!card.ok) bad.push(`dashboard card: ${JSON.stringify(card)}`);
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

await check('keyboard: Enter on a target row opens the explorer', async () => {
  await page.goto(base + '/targets');
  await page.waitForSelector('#targets tbody tr.target');
  await page.focus('#targets tbody tr.target');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/explorer\?/);
  return true;
});

// the automatic /favicon.ico request is not a page response: check it answers without an error
const fav = await fetch(base + '/favicon.ico');
report('favicon request answers without an error (no console noise)', fav.status === 204, `HTTP ${fav.status}`);
await check('shards: clicking a timeline point of a service another shard holds opens that shard\'s record (id= and peer=, through this collector)', async () => {
  const series = await api('/api/v1/timeline?name=remote&type=heap');
  const s = series && series.length === 1 ? series[0] : null;
  if (!s || !s.peer || s.points.length < 2) throw new Error(`the peer's series: ${JSON.stringify(series).slice(0, 400)}`);
  const to = ((s.points.at(-1)[1] + 1e6) / 1e9).toFixed(3), q = `name=remote&type=heap&to=${to}`;
  const { pts, k, end, summary } = await clickMiddlePoint(q, q);
  const picked = new URL(page.url()).searchParams.get('profile') || '';
  const recs = (await api('/api/v1/profiles?' + q)).filter((r) => Math.abs(r.endUnixNano - end) < 1000);
  const bad = [];
  if (recs.length !== 1 || recs[0].peer !== s.peer) bad.push(`records ending at ${end}: ${JSON.stringify(recs).slice(0, 300)}`);
  if (!recs.length || picked !== `id:${recs[0].id}@${s.peer}`) bad.push(`picked ${picked}`);
  const m = summary.match(/^(\d+) profiles, total (\S+?)(;|$)/);
  const total = recs.length ? recs[0].totals.at(-1) : NaN;
  if (!m || m[1] !== '1' || !near(m[2], total) || total !== pts[k][1]) bad.push(`summary ${JSON.stringify(summary)}, the record's total ${total}, the point ${pts[k][1]}`);
  await shot('explorer-peer-record');
  if (bad.length) throw new Error(bad.join('\n'));
  return true;
});

report('no console errors on any page', consoleErrors.length === 0, consoleErrors.join('\n'));
await browser.close();
console.log(`${failed ? 'ui: failures' : 'ui: done'}`);
process.exit(failed ? 1 : 0);
