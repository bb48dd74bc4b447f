// The pipeline page in a real browser: an admin (ATTEST_E2E_ADMIN_KEY,
// granted --role admin by scripts/test.sh) sees it, linked from the top
// bar, with figures that the live stream replaces without a reload; an
// analyst (the storage state's ATTEST_E2E_ACCESS_KEY) gets the 403 page
// and no link.
const path = require('path');
const { execFileSync } = require('child_process');
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated, post } = require('./support');

// The local stack's own script: the test takes ClickHouse away as an
// outage would, and gives it back.
function stack(action, service) {
  execFileSync('bash', [path.join(__dirname, '..', '..', 'scripts', 'stack.sh'), action, service], {
    stdio: 'inherit',
    timeout: 120_000,
  });
}

async function signInAsAdmin(page) {
  // Not a skip: a run without the key has tested nothing and must fail.
  expect(process.env.ATTEST_E2E_ADMIN_KEY, 'set by scripts/test.sh').toBeTruthy();
  const login = await page.request.post('/login', {
    form: { key: process.env.ATTEST_E2E_ADMIN_KEY, next: '/search' },
    maxRedirects: 0,
  });
  expect(login.status()).toBe(303);
  expect(login.headers()['location']).toBe('/search');
}

test('an analyst gets the 403 page and no link', async ({ page }) => {
  const response = await page.goto('/pipeline');
  expect(response.status()).toBe(403);
  await expect(page.getByTestId('forbidden')).toContainText('for admins only');
  await expect(page.locator('[data-testid="partition"]')).toHaveCount(0);
  await page.screenshot({ path: 'test-results/pipeline-analyst-403.png', fullPage: true });
  await page.goto('/search');
  await hydrated(page);
  await expect(page.locator('nav a[href="/pipeline"]')).toHaveCount(0);
});

test.describe('as an admin', () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test('sees the pipeline, updated live without a reload', async ({ page }) => {
    const errors = watchErrors(page);
    await signInAsAdmin(page);

    await page.goto('/search');
    await hydrated(page);
    await page.locator('nav a[href="/pipeline"]').click();
    await expect(page).toHaveURL(/\/pipeline$/);
    await expect(page.getByTestId('kafka-state')).toHaveText('cluster answers');
    await expect(page.getByTestId('clickhouse-state')).toHaveText('up');
    await expect(page.locator('[data-testid="partition"]').first()).toBeVisible();

    // The live stream replaces the figures: a newer snapshot arrives while
    // the page stays where it is (the marker would not survive a reload).
    const updated = page.getByTestId('pipeline-updated');
    const first = await updated.getAttribute('data-taken-at');
    await page.evaluate(() => { window.__stillThisPage = true; });
    await expect(updated).toContainText('live', { timeout: 20_000 });
    await expect
      .poll(async () => updated.getAttribute('data-taken-at'), { timeout: 20_000 })
      .not.toBe(first);
    expect(await page.evaluate(() => window.__stillThisPage)).toBe(true);

    // Ingest figures and every ClickHouse node, the one serving reads marked.
    await expect(page.getByTestId('ingest-p99')).toBeVisible();
    await expect(page.getByTestId('spool-oldest')).toHaveText('nothing waits');
    // The dead-letter figure (dead_letters.spec.js may have left one) and its link.
    await expect(page.getByTestId('dead-letters-waiting')).toHaveText(/^(none waiting|\d+ dead letters? waiting)$/);
    await expect(page.getByTestId('dead-letters-inbox')).toHaveAttribute('href', '/dead-letters');
    const node = page.locator('[data-testid="node"]').first();
    await expect(node).toHaveAttribute('data-up', 'true');
    await expect(node).toHaveAttribute('data-serves-reads', 'true');

    // Trends: the charts over the last hour, drawn as SVG lines, then over
    // 24 h and 7 d on a click, without a reload.
    const trends = page.getByTestId('trends');
    await expect(trends.locator('[data-testid="trend-chart"]')).toHaveCount(5);
    const lagChart = trends.locator('[data-chart="trend-lag-time"]');
    await expect(lagChart).toHaveAttribute('data-window', '1h');
    await expect(lagChart.locator('svg[role="img"]')).toBeVisible();
    // The console has run for a while (the sampler writes every 10 s):
    // at least one line is drawn.
    await expect
      .poll(async () => {
        await page.getByTestId('trend-window-24h').click();
        await page.getByTestId('trend-window-1h').click();
        return trends.locator('polyline.trend-line').count();
      }, { timeout: 60_000 })
      .toBeGreaterThan(0);
    await page.screenshot({ path: 'test-results/pipeline-admin.png', fullPage: true });
    for (const window of ['24h', '7d']) {
      await page.getByTestId(`trend-window-${window}`).click();
      await expect(lagChart).toHaveAttribute('data-window', window);
      await expect(page.getByTestId(`trend-window-${window}`)).toHaveAttribute('aria-pressed', 'true');
    }
    await expect(page.getByTestId('trends-about')).toContainText('sampled every');
    await page.screenshot({ path: 'test-results/pipeline-trends-7d.png', fullPage: true });
    expect(await page.evaluate(() => window.__stillThisPage)).toBe(true);
    expect(errors).toEqual([]);
  });

  // ClickHouse stopped while an event is posted: the live page says the
  // node is down and the writer is backing off, with nothing lost; once it
  // is back the page says so and the event is stored.
  test('sees ClickHouse down, then back, live', async ({ page, request }) => {
    test.setTimeout(240_000);
    await signInAsAdmin(page);
    await page.goto('/pipeline');
    await hydrated(page);
    await expect(page.getByTestId('clickhouse-state')).toHaveText('up');
    const tenant = `e2e-outage-${Date.now().toString(36)}`;
    let id;
    stack('stop', 'clickhouse');
    try {
      // Accepted (202): Kafka holds it while ClickHouse is away.
      id = await post(request, {
        tenant_id: tenant,
        occurred_at: new Date().toISOString(),
        category: 'system',
        action: 'outage.probe',
        outcome: 'success',
        actor: { id: 'e2e', type: 'service' },
        source_service: 'e2e',
      });
      await expect(page.getByTestId('clickhouse-state')).toHaveText('down', { timeout: 30_000 });
      await expect(page.getByTestId('writer-state')).toContainText('backing off', { timeout: 30_000 });
      await expect(page.getByTestId('pipeline-updated')).toContainText('live');
      await page.screenshot({ path: 'test-results/pipeline-clickhouse-down.png', fullPage: true });
    } finally {
      stack('start', 'clickhouse');
    }
    await expect(page.getByTestId('clickhouse-state')).toHaveText('up', { timeout: 60_000 });
    await expect(page.getByTestId('writer-state')).not.toContainText('backing off', { timeout: 60_000 });
    await page.screenshot({ path: 'test-results/pipeline-clickhouse-back.png', fullPage: true });
    // The event posted during the outage is stored, once.
    await expect
      .poll(async () => {
        await page.goto(`/search?tenant=${tenant}&range=1h`);
        return page.locator(`tr[data-event-id="${id}"]`).count();
      }, { timeout: 60_000, intervals: [1000, 2000] })
      .toBe(1);
  });
});
