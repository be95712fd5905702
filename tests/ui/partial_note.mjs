// Reads what the explorer says about a partial answer, for tests/collector/objstore.py.
// Usage: node partial_note.mjs URL...  (explorer pages). Prints one JSON line: for each URL, the
// text of the page's partial-answer note, or null when the page shows none. Waits for the
// render's summary, so a note that is missing is missing from a drawn page.
import { chromium } from 'playwright-core';

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
const out = [];
try {
  const page = await browser.newPage();
  for (const url of process.argv.slice(2)) {
    await page.goto(url);
    await page.waitForSelector('#summary', { timeout: 20000 });
    const note = await page.$('#partial');
    out.push(note ? await note.textContent() : null);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
