// Detections in a real browser: 50 failed logins by one actor in a fresh
// tenant; an analyst creates a rule for that burst on /detections; the
// firing appears in the dashboard's Detections panel, its link opens Search
// on that actor; and a webhook receiver started here (its port and secret
// set by scripts/test.sh in ATTEST_E2E_DETECTIONS_HOOK_PORT and
// ATTEST_E2E_DETECTIONS_SECRET, the server's [[detections.webhooks]]
// pointing at it) gets exactly one delivery, signed with HMAC-SHA256.
const http = require('http');
const crypto = require('crypto');
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated, post } = require('./support');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-detect-${run}`;
const mallory = `mallory-${run}`;

/// A receiver that keeps every delivery of this run's tenant.
function startReceiver(port, secret) {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const expected = 'sha256=' + crypto.createHmac('sha256', secret).update(body).digest('hex');
      let json = null;
      try { json = JSON.parse(body.toString('utf8')); } catch (_) { /* kept as null */ }
      if (json && json.tenant === tenant) {
        got.push({ json, signed: req.headers['x-attest-signature'] === expected });
      }
      res.writeHead(200);
      res.end('ok');
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ server, got })));
}

test('a rule for a burst of failed logins fires once, on the dashboard and at the webhook', async ({ page, request }) => {
  // Not a skip: without the receiver's settings this run tests nothing.
  const port = Number(process.env.ATTEST_E2E_DETECTIONS_HOOK_PORT);
  const secret = process.env.ATTEST_E2E_DETECTIONS_SECRET;
  expect(port, 'set by scripts/test.sh').toBeTruthy();
  expect(secret, 'set by scripts/test.sh').toBeTruthy();
  const receiver = await startReceiver(port, secret);
  try {
    const errors = watchErrors(page);
    const posts = [];
    for (let i = 0; i < 50; i++) {
      posts.push(post(request, {
        tenant_id: tenant,
        occurred_at: new Date().toISOString(),
        category: 'authentication',
        action: 'user.login',
        outcome: 'failure',
        actor: { id: mallory, type: 'user', ip: '203.0.113.50' },
        source_service: 'sso',
      }));
    }
    await Promise.all(posts);

    await page.goto('/dashboard');
    await hydrated(page);
    await page.locator('nav a[href="/detections"]').click();
    await expect(page).toHaveURL(/\/detections$/);
    await expect(page.getByRole('heading', { name: 'Detections', level: 1 })).toBeVisible();

    // A bad threshold is refused with the field named.
    const form = page.getByTestId('new-rule-form');
    await form.getByTestId('rule-tenant').fill(tenant);
    await form.getByTestId('rule-name').fill(`Brute force ${run}`);
    await form.getByTestId('rule-query').fill('category:authentication outcome:(');
    await form.getByTestId('save-rule').click();
    await expect(page.getByTestId('rule-error')).toContainText('query');
    // That 400 was the point; the browser logs it as an error.
    errors.length = 0;

    await form.getByTestId('rule-query').fill('category:authentication outcome:failure');
    await form.getByTestId('rule-group-by').selectOption('actor');
    await form.getByTestId('rule-threshold').fill('10');
    await form.getByTestId('rule-window').fill('5');
    await form.getByTestId('save-rule').click();
    const row = page.locator(`[data-testid="rule"][data-rule-name="Brute force ${run}"]`);
    await expect(row).toBeVisible();
    await expect(row).toContainText('≥ 10 events per actor within 5 min');

    // The evaluator runs every second here; the firing shows on the
    // dashboard of that tenant.
    const dashboard = `/dashboard?tenant=${encodeURIComponent(tenant)}&range=1h`;
    const panel = page.getByTestId('panel-detections');
    await expect(async () => {
      await page.goto(dashboard);
      await expect(panel.getByTestId('firing-value')).toHaveText(mallory, { timeout: 2_000 });
    }).toPass({ timeout: 60_000 });
    await hydrated(page);
    await expect(panel.getByTestId('firing')).toHaveCount(1);
    await expect(panel.getByTestId('firing-events')).toContainText('(≥ 10)');
    await page.screenshot({ path: 'test-results/detections-dashboard.png', fullPage: true });

    // One signed delivery, and no second one after more evaluations.
    await expect.poll(() => receiver.got.length, { timeout: 30_000 }).toBe(1);
    await page.waitForTimeout(5_000);
    expect(receiver.got.length).toBe(1);
    const [delivery] = receiver.got;
    expect(delivery.signed).toBe(true);
    expect(delivery.json.type).toBe('detection');
    expect(delivery.json.group_value).toBe(mallory);
    expect(delivery.json.events).toBeGreaterThanOrEqual(10);

    // The firing's link opens Search on that actor's failures in its window.
    await panel.getByTestId('firing-search').click();
    await expect(page).toHaveURL(/\/search\?/);
    await hydrated(page);
    expect(decodeURIComponent(page.url())).toContain(`actor:"${mallory}"`);
    await expect(page.locator('table').getByText(mallory).first()).toBeVisible();

    // The page lists the firing and the delivery attempt.
    await page.goto('/detections');
    await hydrated(page);
    await expect(page.locator(`[data-testid="firing"]`).filter({ hasText: mallory })).toHaveCount(1);
    await page.screenshot({ path: 'test-results/detections-page.png', fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
  } finally {
    receiver.server.close();
  }
});
