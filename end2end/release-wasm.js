#!/usr/bin/env node
// Starts the release WASM of the console in Debian's Chromium: the build
// users meet (opt-level z, LTO, then binaryen's wasm-opt). The browser
// tests hydrate it too, later; this fails first, and names the cause.
//
//   node end2end/release-wasm.js SITE_ROOT
//
// SITE_ROOT is where `ATTEST_PROFILE=release ATTEST_SITE_ROOT=SITE_ROOT
// scripts/console.sh build` built the console. This
// serves its pkg/ directory with a page that loads the module and
// instantiates the WASM as the console's own loader does, up to where
// hydration would begin: wasm-bindgen's start-up (its externref table is
// filled here, which is where a wasm-opt that rewrote the module's exports
// once broke every release build with "WebAssembly.Table.set(): Argument 1
// is invalid"), then checks that the module exports `hydrate`. It does not
// hydrate: the browser tests do, on the release console's own pages.
//
// Prints "release-wasm: 1 passed, 0 failed" (scripts/test.sh counts it) or
// "release-wasm: 0 passed, 1 failed" with the browser's error, and exits 1.

const fs = require('fs');
const http = require('http');
const path = require('path');
const { chromium } = require('playwright-core');

const TYPES = {
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
};

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>release WASM start</title></head>
<body>
<script type="module">
  try {
    const mod = await import('/pkg/attest.js');
    await mod.default({ module_or_path: '/pkg/attest.wasm' });
    if (typeof mod.hydrate !== 'function') throw new Error('the module exports no hydrate()');
    document.body.dataset.started = 'true';
  } catch (e) {
    document.body.dataset.error = String((e && e.stack) || e);
  }
</script>
</body></html>`;

function serve(site) {
  const pkg = path.join(site, 'pkg');
  return http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
      return;
    }
    const name = url.pathname.replace(/^\/pkg\//, '');
    const file = path.join(pkg, name);
    if (!url.pathname.startsWith('/pkg/') || name.includes('..') || !fs.existsSync(file)) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
}

function report(ok, detail) {
  console.log(`release-wasm: ${ok ? 1 : 0} passed, ${ok ? 0 : 1} failed`);
  if (detail) console.log(detail);
  process.exitCode = ok ? 0 : 1;
}

async function main() {
  const site = process.argv[2];
  if (!site || !fs.existsSync(path.join(site, 'pkg', 'attest.wasm'))) {
    report(false, `no ${site}/pkg/attest.wasm: run ATTEST_PROFILE=release ATTEST_SITE_ROOT=${site || 'DIR'} scripts/console.sh build`);
    return;
  }
  const server = serve(site);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  const errors = [];
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(url);
    const outcome = await page.waitForFunction(
      () => document.body.dataset.started || document.body.dataset.error,
      null,
      { timeout: 60000 },
    );
    const started = (await outcome.jsonValue()) === 'true';
    const error = await page.evaluate(() => document.body.dataset.error || '');
    report(started && errors.length === 0, [error, ...errors].filter(Boolean).join('\n'));
  } catch (e) {
    report(false, `${e}\n${errors.join('\n')}`);
  } finally {
    await browser.close();
    server.close();
  }
}

main();
