#!/usr/bin/env node
// How fast a console page loads in Debian's Chromium: first paint, the
// moment it hydrates, the moment its query box answers a keystroke, and the
// bytes it downloads on the way, optionally over a throttled network. The
// Search bench (BENCH_SEARCH_CONSOLE_URL) and the Dashboard bench
// (BENCH_DASHBOARD_CONSOLE_URL) run it and write its figures into
// docs/BENCHMARKS.md; by hand:
//
//   node end2end/interactive.js http://127.0.0.1:3040 /search 5 --throttle
//   node end2end/interactive.js http://127.0.0.1:3040 '/dashboard?tenant=northwind&range=30d' 10
//
// --throttle is 10 Mbit/s down, 10 Mbit/s up and 40 ms of latency
// (issue 17); --throttle=DOWN/UP/LATENCY sets others (Mbit/s, Mbit/s, ms).
// Chromium applies them itself (CDP Network.emulateNetworkConditions) to
// every request of the page, after the 40 ms on each round trip.
//
// Signs in first when ATTEST_E2E_ACCESS_KEY is set (as global-setup.js
// does; the sign-in itself is not timed or throttled). Each run is a fresh
// browser context: an empty cache, as on a first visit.
//
// What one run measures, each in ms from the start of the navigation:
// - first_paint_ms, first_contentful_paint_ms: the browser's paint timings;
// - hydrated_ms: when <body> gets data-hydrated="true", which the app's
//   first effect sets once the WASM has taken over the page (the marker the
//   browser tests wait for, end2end/tests/support.js `hydrated`);
// - interactive_ms: at the marker the page focuses the query box (--input,
//   default #q) and tells the driver, which types one key (--key, default
//   a) at once; this is when the app answers it (--answer, default: the
//   box's suggestion list opens, #q[aria-expanded="true"]), a change only
//   the WASM makes. The time to interactive. key_ms is when the key
//   reached the page: later than the marker by one round trip to the
//   driver, plus however long the page's main thread stayed busy.
// - response_start_ms, response_end_ms: the page's first and last byte
//   (the server streams the page: its shell first, each part as its data
//   is ready, so the last byte waits for the slowest query);
// - dom_content_loaded_ms, load_ms: the navigation's events;
// - content_ms: with --content=SELECTOR, when the first element matching it
//   is in the page (a chart, a result row), painted within the next frame.
// - bytes: what crossed the network for the page up to the keystroke
//   (compressed, headers included, as Chromium counts encodedDataLength),
//   per kind: document, script, wasm, stylesheet, fetch (server functions),
//   other; resources: each such request with its content-encoding, its
//   bytes over the wire and uncompressed (decoded).
//
// Prints one JSON line; a measurement, not a test: it asserts nothing
// about times. It fails (exit 1) when a page never hydrates or never
// answers, because then there is nothing to report.
const { chromium } = require('playwright-core');

const DEFAULT_THROTTLE = { down_mbit: 10, up_mbit: 10, latency_ms: 40 };

function usage(message) {
  if (message) console.error(message);
  console.error(
    'usage: interactive.js CONSOLE_URL [PATH] [RUNS] [--throttle[=DOWN/UP/LATENCY]] ' +
      '[--input=SELECTOR] [--key=KEY] [--answer=SELECTOR] [--content=SELECTOR]',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const positional = [];
  const options = {
    throttle: null,
    input: '#q',
    key: 'a',
    answer: '#q[aria-expanded="true"]',
    content: null,
  };
  for (const arg of argv) {
    if (arg === '--throttle') {
      options.throttle = { ...DEFAULT_THROTTLE };
    } else if (arg.startsWith('--throttle=')) {
      const parts = arg.slice('--throttle='.length).split('/').map(Number);
      if (parts.length !== 3 || parts.some((n) => !Number.isFinite(n) || n <= 0)) {
        usage(`--throttle wants DOWN/UP/LATENCY, three positive numbers (Mbit/s, Mbit/s, ms), not '${arg}'`);
      }
      options.throttle = { down_mbit: parts[0], up_mbit: parts[1], latency_ms: parts[2] };
    } else if (arg.startsWith('--input=')) {
      options.input = arg.slice('--input='.length);
    } else if (arg.startsWith('--key=')) {
      options.key = arg.slice('--key='.length);
    } else if (arg.startsWith('--answer=')) {
      options.answer = arg.slice('--answer='.length);
    } else if (arg.startsWith('--content=')) {
      options.content = arg.slice('--content='.length);
    } else if (arg.startsWith('--')) {
      usage(`unknown option ${arg}`);
    } else {
      positional.push(arg);
    }
  }
  const [base, path = '/search', runsText = '5'] = positional;
  if (!base) usage();
  const runs = parseInt(runsText, 10);
  if (!(runs >= 1)) usage(`RUNS must be a positive whole number, not '${runsText}'`);
  return { base, path, runs, ...options };
}

// Runs in the page before any of its scripts: timestamps (performance.now(),
// from navigation start) of the hydration marker, the first key and the
// answer, taken by the page itself so that the driver's polling adds
// nothing. At the marker it focuses the query box (as a click would) and
// tells the driver at once (an exposed binding, no polling), which then
// types the key.
function watchInPage({ input, answer, content }) {
  const marks = { content: null, hydrated: null, key: null, answered: null };
  window.__attestInteractive = marks;
  const check = () => {
    if (content && marks.content === null && document.querySelector(content)) {
      marks.content = performance.now();
    }
    if (marks.hydrated === null && document.body?.getAttribute('data-hydrated') === 'true') {
      marks.hydrated = performance.now();
      const box = document.querySelector(input);
      if (box) box.focus();
      window.__attestHydrated(Boolean(box));
    }
    if (marks.key !== null && marks.answered === null && document.querySelector(answer)) {
      marks.answered = performance.now();
    }
  };
  new MutationObserver(check).observe(document, {
    subtree: true,
    childList: true,
    attributes: true,
  });
  window.addEventListener(
    'keydown',
    () => {
      if (marks.key === null) marks.key = performance.now();
    },
    true,
  );
}

// The kind of a request, for the bytes per kind.
function kindOf(type, mimeType, url) {
  if (mimeType === 'application/wasm' || /\.wasm(\?|$)/.test(url)) return 'wasm';
  switch (type) {
    case 'Document':
      return 'document';
    case 'Script':
      return 'script';
    case 'Stylesheet':
      return 'stylesheet';
    case 'Fetch':
    case 'XHR':
      return 'fetch';
    default:
      return 'other';
  }
}

async function measure(browser, opts) {
  const context = await browser.newContext({ baseURL: opts.base });
  try {
    const key = process.env.ATTEST_E2E_ACCESS_KEY;
    if (key) {
      const response = await context.request.post('/login', {
        form: { key, next: opts.path },
        maxRedirects: 0,
      });
      const location = response.headers()['location'] || '';
      if (response.status() !== 303 || location.startsWith('/login')) {
        throw new Error(`signing in to ${opts.base} failed: ${response.status()} → ${location}`);
      }
    }
    let hydrated;
    const hydration = new Promise((resolve) => {
      hydrated = resolve;
    });
    await context.exposeBinding('__attestHydrated', (_source, hasInput) => hydrated(hasInput));
    await context.addInitScript(watchInPage, {
      input: opts.input,
      answer: opts.answer,
      content: opts.content,
    });
    const tab = await context.newPage();
    const cdp = await context.newCDPSession(tab);
    const requests = new Map();
    let typing = false;
    cdp.on('Network.requestWillBeSent', (e) => {
      if (!typing && !requests.has(e.requestId)) {
        requests.set(e.requestId, { url: e.request.url, type: e.type, done: false, decoded: 0 });
      }
    });
    cdp.on('Network.responseReceived', (e) => {
      const r = requests.get(e.requestId);
      if (!r) return;
      const headers = Object.fromEntries(
        Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), v]),
      );
      r.status = e.response.status;
      r.mime = e.response.mimeType;
      r.encoding = headers['content-encoding'] || 'none';
      r.cache_control = headers['cache-control'] || null;
    });
    cdp.on('Network.dataReceived', (e) => {
      const r = requests.get(e.requestId);
      if (r) r.decoded += e.dataLength || 0;
    });
    const finished = (e, failed) => {
      const r = requests.get(e.requestId);
      if (!r) return;
      r.done = true;
      r.failed = failed;
      r.bytes = e.encodedDataLength || 0;
    };
    cdp.on('Network.loadingFinished', (e) => finished(e, false));
    cdp.on('Network.loadingFailed', (e) => finished(e, true));
    await cdp.send('Network.enable');
    if (opts.throttle) {
      await cdp.send('Network.emulateNetworkConditions', {
        offline: false,
        latency: opts.throttle.latency_ms,
        // Bytes per second.
        downloadThroughput: (opts.throttle.down_mbit * 1e6) / 8,
        uploadThroughput: (opts.throttle.up_mbit * 1e6) / 8,
      });
    }

    await tab.goto(opts.path, { waitUntil: 'commit', timeout: 120_000 });
    let timer;
    const hasInput = await Promise.race([
      hydration,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${opts.path} did not hydrate within 120 s`)),
          120_000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    if (hasInput) {
      typing = true;
      await tab.keyboard.press(opts.key);
      await tab.waitForFunction(() => window.__attestInteractive.answered !== null, null, {
        timeout: 30_000,
      });
    }
    await tab.waitForLoadState('load', { timeout: 120_000 });
    // Everything asked for before the keystroke, finished.
    for (let waited = 0; [...requests.values()].some((r) => !r.done) && waited < 10_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const timings = await tab.evaluate(() => {
      const paint = Object.fromEntries(
        performance.getEntriesByType('paint').map((e) => [e.name, e.startTime]),
      );
      const nav = performance.getEntriesByType('navigation')[0];
      const marks = window.__attestInteractive;
      return {
        first_paint_ms: paint['first-paint'] ?? null,
        first_contentful_paint_ms: paint['first-contentful-paint'] ?? null,
        response_start_ms: nav ? nav.responseStart : null,
        response_end_ms: nav ? nav.responseEnd : null,
        dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
        load_ms: nav ? nav.loadEventEnd : null,
        content_ms: marks.content,
        hydrated_ms: marks.hydrated,
        key_ms: marks.key,
        interactive_ms: marks.answered,
      };
    });
    const resources = [...requests.values()]
      .filter((r) => !r.url.startsWith('data:'))
      .map((r) => ({
        url: r.url.startsWith(opts.base) ? r.url.slice(opts.base.length) : r.url,
        kind: kindOf(r.type, r.mime, r.url),
        status: r.status ?? null,
        encoding: r.encoding ?? null,
        cache_control: r.cache_control ?? null,
        bytes: r.bytes ?? null,
        decoded: r.decoded,
        failed: r.failed ?? null,
      }));
    const bytes = {};
    for (const r of resources) bytes[r.kind] = (bytes[r.kind] || 0) + (r.bytes || 0);
    return { timings, bytes, resources, hasInput };
  } finally {
    await context.close();
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const out = {
    browser: `Chromium ${browser.version()}`,
    path: opts.path,
    runs: opts.runs,
    throttle: opts.throttle,
    interaction: { input: opts.input, key: opts.key, answer: opts.answer, content: opts.content },
    first_paint_ms: [],
    first_contentful_paint_ms: [],
    response_start_ms: [],
    response_end_ms: [],
    dom_content_loaded_ms: [],
    load_ms: [],
    content_ms: [],
    hydrated_ms: [],
    key_ms: [],
    interactive_ms: [],
    bytes: [],
    resources: [],
  };
  try {
    for (let i = 0; i < opts.runs; i++) {
      const run = await measure(browser, opts);
      for (const [name, value] of Object.entries(run.timings)) out[name].push(value);
      out.bytes.push(run.bytes);
      // The requests of the last run, for where the bytes go.
      out.resources = run.resources;
      if (!run.hasInput) out.interaction.missing = true;
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
