// Flame graph in Chromium: time from navigation to the first drawn flame graph, and the redraw
// after a click zooms in. Usage: node bench_flame.mjs URL RUNS [DRAWS] -> one JSON line.
// DRAWS (default 1): how many flame graphs the page draws (3 for the sandwich tab: the main
// one, the callers' and the callees'); first_draw_ms is then when the last of them was drawn.
import { chromium } from 'playwright-core';

const [url, runs, draws] = [process.argv[2], +process.argv[3] || 5, +process.argv[4] || 1];
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
const first = [], zoom = [], nodes = [];
for (let i = 0; i < runs; i++) {
  const p = await b.newPage({ viewport: { width: 1400, height: 900 } });
  await p.goto(url);
  await p.waitForFunction((n) => (window.__drawEnds || []).length >= n, draws, { timeout: 120000 });
  // performance.now() counts from navigation start: the end of the first (or DRAWS-th) draw
  first.push(await p.evaluate((n) => window.__drawEnds[n - 1], draws));
  nodes.push(await p.$eval('#summary', (s) => s.textContent));
  const box = await (await p.$('#flame')).boundingBox();
  const before = await p.evaluate(() => window.__flameDraws.length);
  await p.mouse.click(box.x + box.width * 0.3, box.y + 18 * 2 + 9);
  await p.waitForFunction((n) => window.__flameDraws.length > n, before);
  zoom.push(await p.evaluate(() => window.__flameDraws.at(-1)));
  // the page's later requests (timeline, tags) finish before the next navigation starts: on 2
  // cores the server computing them would otherwise slow the next page's render
  await p.waitForLoadState('networkidle');
  await p.close();
}
await b.close();
const med = (v) => v.slice().sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(JSON.stringify({ firsts: first.map(Math.round), first_draw_ms: med(first), zoom_redraw_ms: med(zoom), summary: nodes[0] }));
