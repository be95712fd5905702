// Flame graph in Chromium: time from navigation to the first drawn flame graph, and the redraw
// after a click zooms in. Usage: node ui_bench.mjs URL RUNS  -> one JSON line.
import { chromium } from 'playwright-core';

const [url, runs] = [process.argv[2], +process.argv[3] || 5];
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
const first = [], zoom = [], nodes = [];
for (let i = 0; i < runs; i++) {
  const p = await b.newPage({ viewport: { width: 1400, height: 900 } });
  await p.goto(url);
  await p.waitForFunction(() => (window.__flameDraws || []).length >= 1, null, { timeout: 60000 });
  // performance.now() counts from navigation start: the end of the first draw
  first.push(await p.evaluate(() => window.__firstDrawEnd));
  nodes.push(await p.$eval('#summary', (s) => s.textContent));
  const box = await (await p.$('#flame')).boundingBox();
  const before = await p.evaluate(() => window.__flameDraws.length);
  await p.mouse.click(box.x + box.width * 0.3, box.y + 18 * 2 + 9);
  await p.waitForFunction((n) => window.__flameDraws.length > n, before);
  zoom.push(await p.evaluate(() => window.__flameDraws.at(-1)));
  await p.close();
}
await b.close();
const med = (v) => v.slice().sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(JSON.stringify({ first_draw_ms: med(first), zoom_redraw_ms: med(zoom), summary: nodes[0] }));
