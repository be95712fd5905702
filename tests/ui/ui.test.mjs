// Browser tests of the collector UI in Debian's chromium, driven by playwright-core.
// Usage: node ui.test.mjs BASE_URL OUT_DIR EXPECTED_TOP_FUNCTION
// Prints "ok - name" / "not ok - name" per check; tests/run.py counts them.
import { chromium } from 'playwright-core';
import fs from 'node:fs';

const [base, out, expectedTop, frozenTo] = process.argv.slice(2);
const TO = `&to=${frozenTo}`; // the data the explorer checks look at does not move
fs.mkdirSync(out, { recursive: true });
let failed = 0;
const report = (name, ok, detail) => {
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}`);
  if (!ok) { failed++; if (detail) console.log('    ' + String(detail).split('\n').join('\n    ')); }
};
async function check(name, fn) {
  try { const r = await fn(); report(name, r === undefined ? true : !!r, r === false ? 'assertion false' : ''); }
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
  return groups.includes('shop') && groups.includes('checkout') && after === before - 3 && expanded === 'false';
});

await check('explorer draws the flame graph; its top row equals the API and go tool pprof', async () => {
  await page.goto(base + '/explorer?name=demo&type=cpu' + TO);
  await page.waitForSelector('#top tbody tr');
  const first = await page.$eval('#top tbody tr td', (td) => td.textContent);
  const d = await api('/api/v1/render?name=demo&type=cpu&top=5' + TO);
  await shot('explorer');
  const h = await page.$eval('#flame', (c) => c.height);
  if (first !== d.top[0].name) throw new Error(`UI top row ${first}, API ${d.top[0].name}`);
  if (expectedTop && first !== expectedTop) throw new Error(`UI top row ${first}, go tool pprof ${expectedTop}`);
  return h > 0;
});

await check('timeline: dragging selects a range (from/to in the URL)', async () => {
  await page.waitForFunction(() => +(document.querySelector('#timeline')?.dataset.points || 0) >= 2, null, { timeout: 15000 });
  const box = await (await page.$('#timeline')).boundingBox();
  await page.mouse.move(box.x + box.width * 0.2, box.y + 40);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.95, box.y + 40, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => new URLSearchParams(location.search).has('from'), null, { timeout: 10000 });
  await page.waitForSelector('#top tbody tr');
  const u = new URL(page.url());
  return +u.searchParams.get('to') > +u.searchParams.get('from');
});

await check('clicking a frame zooms (focus in the URL, a link reproduces it)', async () => {
  await page.goto(base + '/explorer?name=demo&type=cpu');
  await page.waitForSelector('#top tbody tr');
  const box = await (await page.$('#flame')).boundingBox();
  await page.mouse.click(box.x + 30, box.y + 18 + 9); // depth 1, leftmost frame
  await page.waitForFunction(() => new URLSearchParams(location.search).get('focus'), null, { timeout: 5000 });
  const focus = new URL(page.url()).searchParams.get('focus');
  await page.goto(page.url());
  await page.waitForSelector('#top tbody tr');
  await shot('explorer-zoomed');
  return focus && new URL(page.url()).searchParams.get('focus') === focus;
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

await check('switching the sample type re-renders with that type', async () => {
  await page.selectOption('#sample', 'samples');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('sample') === 'samples');
  await page.waitForSelector('#top tbody tr');
  const summary = await page.$eval('#summary', (s) => s.textContent);
  return /total [0-9.]+k?$|total [0-9.]+[kMG]?;|total [0-9]+/.test(summary) && !summary.includes('ms');
});

await check('top table sorts by a column and a row focuses the flame graph', async () => {
  await page.click('#top th[data-key=cum]');
  const names = await page.$$eval('#top tbody tr td:first-child', (t) => t.slice(0, 8).map((x) => x.textContent));
  // the rows' cum, from the API for the same view, must not increase down the table
  const q = new URLSearchParams(new URL(page.url()).search);
  for (const k of ['search', 'focus', 'norm', 'range', 'base_range']) q.delete(k);
  q.set('top', '20000');
  const cum = new Map((await api('/api/v1/render?' + q)).top.map((r) => [r.name, r.cum]));
  const vals = names.map((n) => cum.get(n));
  const sorted = vals.every((v, i) => v !== undefined && (i === 0 || vals[i - 1] >= v));
  if (!sorted) throw new Error(`not sorted by cum: ${names.map((n, i) => n + '=' + vals[i]).join(', ')}`);
  await page.click('#top tbody tr:nth-child(2)');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('focus'));
  return names.length > 1 && Math.max(...vals) === Math.max(...cum.values());
});

await check('download gives a pprof file', async () => {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const path = `${out}/download.pb.gz`;
  await dl.saveAs(path);
  const b = fs.readFileSync(path);
  return b.length > 100 && b[0] === 0x1f && b[1] === 0x8b;
});

await check('the go tool pprof command is shown for the same selection', async () => {
  const cmd = await page.$eval('#command', (c) => c.textContent);
  return cmd.startsWith("go tool pprof '") && cmd.includes('/api/v1/profile?') && cmd.includes('name=demo');
});

await check('compare mode draws a diff flame graph and a delta table', async () => {
  // base: the older half of what is stored; comparison: the newer half
  const rows = await api('/api/v1/profiles?type=cpu&name=demo' + TO);
  const mid = rows[Math.floor(rows.length / 2)].endUnixNano, sec = (ns) => (ns / 1e9).toFixed(3);
  await page.goto(base + '/compare?' + new URLSearchParams({ name: 'demo', type: 'cpu', base_from: '0', base_to: sec(mid - 1),
    from: sec(mid), to: frozenTo }));
  await page.waitForSelector('#top tbody tr', { timeout: 15000 });
  const headers = await page.$$eval('#top th', (t) => t.map((x) => x.textContent));
  await shot('compare');
  return headers.includes('Δ flat') && (await page.$('.legend')) !== null;
});

await check('dashboard shows a card per service with small flame graphs', async () => {
  await page.goto(base + '/dashboard');
  await page.waitForSelector('#cards .card canvas');
  await page.waitForTimeout(1500);
  await shot('dashboard');
  return (await page.$$('#cards .card')).length >= 1;
});

await check('hostile names and labels are shown as text; no script runs', async () => {
  await page.goto(base + '/targets');
  await page.waitForSelector('#targets tbody tr.target');
  const payloadShown = await page.$$eval('#targets td', (t) => t.some((x) => x.textContent.includes('<img src=x onerror=alert(1)>')));
  await page.goto(base + '/explorer?' + new URLSearchParams({ name: '</script><img src=x onerror=alert(1)>', type: 'heap' }));
  await page.waitForSelector('#top tbody tr', { timeout: 15000 });
  const fnShown = await page.$$eval('#top td', (t) => t.some((x) => x.textContent.includes('</script><img src=x onerror=alert(1)>')));
  await page.goto(base + '/raw');
  await page.goto(base + '/dashboard');
  await page.waitForTimeout(1500);
  await shot('xss');
  const imgs = await page.$$eval('img', (i) => i.length);
  const links = await page.$$eval('a[href^="javascript:"]', (a) => a.length);
  if (dialogs.length) throw new Error('a dialog opened: ' + dialogs.join(', '));
  return payloadShown && fnShown && imgs === 0 && links === 0 && !(await page.evaluate(() => window.__xss));
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
report('no console errors on any page', consoleErrors.length === 0, consoleErrors.join('\n'));
await browser.close();
console.log(`${failed ? 'ui: failures' : 'ui: done'}`);
process.exit(failed ? 1 : 0);
