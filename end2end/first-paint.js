#!/usr/bin/env node
// Time to first paint of a console page in Debian's Chromium, for
// server/benches/dashboard.rs (which runs it when
// BENCH_DASHBOARD_CONSOLE_URL is set) or by hand:
//
//   node end2end/first-paint.js http://127.0.0.1:3000 '/dashboard?tenant=northwind&range=30d' 10
//
// Signs in first when ATTEST_E2E_ACCESS_KEY is set (as global-setup.js
// does). Each run is a fresh browser context (empty cache, as a first
// visit) and reads the browser's own paint timings: first paint and first
// contentful paint, from navigation start. Prints one JSON line:
// {"runs": n, "first_paint_ms": [...], "first_contentful_paint_ms": [...],
//  "load_ms": [...]}. A measurement, not a test: it asserts nothing.
const { chromium } = require('playwright-core');

async function main() {
  const [base, page = '/dashboard', runsText = '10'] = process.argv.slice(2);
  if (!base) {
    console.error('usage: first-paint.js CONSOLE_URL [PATH] [RUNS]');
    process.exit(2);
  }
  const runs = Math.max(1, parseInt(runsText, 10) || 10);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const out = { runs, first_paint_ms: [], first_contentful_paint_ms: [], load_ms: [] };
  try {
    for (let i = 0; i < runs; i++) {
      const context = await browser.newContext({ baseURL: base });
      const key = process.env.ATTEST_E2E_ACCESS_KEY;
      if (key) {
        const response = await context.request.post('/login', {
          form: { key, next: page },
          maxRedirects: 0,
        });
        if (response.status() !== 303) {
          throw new Error(`signing in to ${base} failed: ${response.status()}`);
        }
      }
      const tab = await context.newPage();
      await tab.goto(page, { waitUntil: 'load', timeout: 120000 });
      const timings = await tab.evaluate(() => {
        const paint = Object.fromEntries(
          performance.getEntriesByType('paint').map((e) => [e.name, e.startTime]),
        );
        const nav = performance.getEntriesByType('navigation')[0];
        return {
          fp: paint['first-paint'] ?? null,
          fcp: paint['first-contentful-paint'] ?? null,
          load: nav ? nav.loadEventEnd : null,
        };
      });
      out.first_paint_ms.push(timings.fp);
      out.first_contentful_paint_ms.push(timings.fcp);
      out.load_ms.push(timings.load);
      await context.close();
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
