// The Dashboard in a real browser: a burst of 50 failed logins by one actor
// in a fresh tenant tops "Top actors by failures"; its bar opens Search over
// exactly those 50 events. The page must hydrate without a browser error.
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated, post } = require('./support');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-dash-${run}`;
const brute = `brute-${run}`;
const alice = `alice-${run}`;

const postEvent = (request, fields) => post(request, {
  tenant_id: tenant,
  occurred_at: new Date().toISOString(),
  category: 'authentication',
  action: 'user.login',
  outcome: 'success',
  actor: { id: alice, type: 'user', ip: '10.0.0.7' },
  source_service: 'e2e',
  ...fields,
});

test('a burst of failed logins tops the failures chart and its bar opens exactly those events', async ({ page, request }) => {
  const errors = watchErrors(page);
  const posts = [];
  for (let i = 0; i < 50; i++) {
    posts.push(postEvent(request, {
      outcome: 'failure',
      actor: { id: brute, type: 'user', ip: '203.0.113.66' },
      metadata: { attempt: String(i) },
    }));
  }
  for (let i = 0; i < 5; i++) posts.push(postEvent(request, { metadata: { n: String(i) } }));
  for (let i = 0; i < 3; i++) {
    posts.push(postEvent(request, { outcome: 'denied', category: 'permission_change', action: 'role.grant' }));
  }
  await Promise.all(posts);

  const topFailures = page.locator('[data-testid="top-failures"]');
  const firstBar = topFailures.locator('a.bar-link').first();
  // The writer flushes about once a second: reload until all 58 are in.
  await expect(async () => {
    await page.goto(`/dashboard?tenant=${encodeURIComponent(tenant)}&range=1h`);
    await expect(page.locator('[data-testid="panel-events"] [data-testid="panel-total"]')).toHaveText('58', { timeout: 2_000 });
  }).toPass({ timeout: 60_000 });
  await hydrated(page);

  // The first paint already holds the charts: SVG with a title per bar.
  await expect(page.locator('[data-testid="panel-events"] svg[role="img"]')).toHaveCount(1);
  await expect(page.locator('[data-testid="panel-outcomes"]')).toContainText('% failed or denied');
  await expect(firstBar.locator('title')).toHaveText(`${brute}: 50 failed or denied events`);
  // The "as table" view says the same, in order.
  await topFailures.locator('summary').click();
  const firstRow = topFailures.locator('tbody tr').first();
  await expect(firstRow.locator('th')).toHaveText(brute);
  // As shown (innerText follows the styles): an id keeps its case.
  expect(await firstRow.locator('th').innerText()).toBe(brute);
  await expect(firstRow.locator('td')).toHaveText('50');

  await firstBar.click();
  await expect(page).toHaveURL(/\/search\?/);
  const url = new URL(page.url());
  expect(url.searchParams.get('tenant')).toBe(tenant);
  expect(url.searchParams.get('q')).toContain(`actor:"${brute}"`);
  await hydrated(page);
  await expect(page.locator('[data-testid="facet-total"] strong')).toHaveText('50');
  await expect(page.locator('[data-testid="search-results"] tbody tr')).toHaveCount(50);

  expect(errors, errors.join('\n')).toEqual([]);
});

// Panels 4–9: a source IP's failures, a heatmap cell and the changes list
// each open Search with the same count; the heatmap switches to the
// browser's zone; the page is captured in light and dark.
test.describe('panels 4 to 9', () => {
  test.use({ timezoneId: 'America/New_York' });

  test('rows and cells open Search with the same count; light and dark screenshots', async ({ page, request }) => {
    const errors = watchErrors(page);
    const own = `e2e-dash2-${run}`;
    const postOwn = (fields) => postEvent(request, { tenant_id: own, ...fields });
    const posts = [];
    for (let i = 0; i < 7; i++) {
      posts.push(postOwn({ outcome: 'failure', actor: { id: brute, type: 'user', ip: '198.51.100.23' }, metadata: { n: String(i) } }));
    }
    for (let i = 0; i < 4; i++) {
      posts.push(postOwn({ category: 'permission_change', action: 'role.grant', resource: { type: 'role', id: `r-${i}` } }));
    }
    for (let i = 0; i < 3; i++) {
      posts.push(postOwn({ category: 'admin', action: 'plan.change', metadata: { n: String(i) } }));
    }
    // Enough tenants that the picker hides the ones not chosen.
    const extras = Array.from({ length: 12 }, (_, i) => `e2e-pick-${run}-${String(i).padStart(2, '0')}`);
    for (const t of extras) posts.push(postEvent(request, { tenant_id: t }));
    await Promise.all(posts);

    const dashboard = `/dashboard?tenant=${encodeURIComponent(own)}&range=24h`;
    await expect(async () => {
      await page.goto(dashboard);
      await expect(page.locator('[data-testid="panel-events"] [data-testid="panel-total"]')).toHaveText('14', { timeout: 2_000 });
    }).toPass({ timeout: 60_000 });
    await hydrated(page);

    // Every panel drew, each with a total.
    for (const id of ['failure-sources', 'changes', 'privileged', 'new-actors', 'heatmap']) {
      await expect(page.locator(`[data-testid="panel-${id}"] [data-testid="panel-total"]`)).toBeVisible();
    }
    await expect(page.locator('[data-testid="panel-failure-sources"] [data-testid="panel-total"]')).toHaveText('7');
    await expect(page.locator('[data-testid="panel-changes"] [data-testid="panel-total"]')).toHaveText('4');
    await expect(page.locator('[data-testid="panel-changes"] tbody tr')).toHaveCount(4);
    await expect(page.locator('[data-testid="panel-privileged"] [data-testid="panel-total"]')).toHaveText('3');
    await expect(page.locator('[data-testid="panel-heatmap"] svg[role="img"] title').first()).toContainText('weekday and hour');
    // Downloads are there, as files.
    await expect(page.locator('[data-testid="panel-heatmap"] [data-testid="download-svg"]')).toHaveAttribute('download', 'heatmap.svg');
    await expect(page.locator('[data-testid="panel-changes"] [data-testid="download-csv"]')).toHaveAttribute('href', /^data:text\/csv/);

    await page.screenshot({ path: 'test-results/dashboard-light.png', fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: 'test-results/dashboard-dark.png', fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
    // The switch wins over the system setting: auto → light → dark.
    const theme = page.getByTestId('theme-toggle');
    await theme.click();
    await theme.click();
    await expect(theme).toHaveText('Theme: dark');
    await expect(page.locator('html[data-theme="dark"]')).toHaveCount(1);
    const panelBg = await page.locator('[data-testid="panel-heatmap"]').evaluate((el) => getComputedStyle(el).backgroundColor);
    expect(panelBg).toBe('rgb(24, 29, 36)');
    await theme.click();

    // The heatmap in the browser's zone.
    const zone = page.getByTestId('zone-toggle');
    await expect(zone).toContainText('America/New_York');
    await zone.click();
    await expect(page.locator('[data-testid="panel-heatmap"] .panel-total')).toContainText('America/New_York');
    await expect(page.locator('[data-testid="panel-heatmap"] [data-testid="panel-total"]')).toHaveText('14');

    // A heatmap cell opens Search with its count.
    const heat = page.locator('[data-testid="panel-heatmap"]');
    await heat.locator('summary').click();
    const cell = heat.locator('td a').first();
    const cellCount = await cell.textContent();
    await cell.click();
    await expect(page).toHaveURL(/\/search\?/);
    await hydrated(page);
    await expect(page.locator('[data-testid="facet-total"] strong')).toHaveText(cellCount);

    // Two tenants at once, chosen in the picker: past a dozen tenants the
    // chosen one stays in view and the others wait behind "more".
    await expect(async () => {
      await page.goto(dashboard);
      await expect(page.getByTestId(`pick-${extras[11]}`)).toBeAttached({ timeout: 2_000 });
    }).toPass({ timeout: 60_000 });
    await hydrated(page);
    await expect(page.getByTestId(`pick-${own}`)).toBeVisible();
    await expect(page.getByTestId(`pick-${tenant}`)).toBeHidden();
    await page.getByTestId('tenant-more').locator('summary').click();
    await page.getByTestId(`pick-${tenant}`).click();
    await expect(page).toHaveURL(/\/dashboard\?/);
    await expect.poll(() => new URL(page.url()).searchParams.get('tenant')).toBe([own, tenant].sort().join(','));
    // The volume per tenant shows both, and a bar opens Search over that
    // tenant alone with the same count.
    await hydrated(page);
    const perTenant = page.locator('[data-testid="panel-tenants"]');
    await expect(perTenant.locator('[data-testid="panel-total"]')).toHaveText('72');
    await expect(page.getByTestId(`pick-${own}`)).toHaveAttribute('aria-pressed', 'true');
    const ownBar = perTenant.locator('a.bar-link', { has: page.locator('title', { hasText: `${own}: 14 events` }) });
    await ownBar.click();
    await expect(page).toHaveURL(/\/search\?/);
    expect(new URL(page.url()).searchParams.get('tenant')).toBe(own);
    await hydrated(page);
    await expect(page.locator('[data-testid="facet-total"] strong')).toHaveText('14');

    // The top failing IP's bar opens exactly its 7 events.
    await page.goto(dashboard);
    await hydrated(page);
    const ipBar = page.locator('[data-testid="failure-sources-by-actor_ip"] a.bar-link').first();
    await expect(ipBar.locator('title')).toHaveText('198.51.100.23: 7 events');
    await ipBar.click();
    await expect(page).toHaveURL(/\/search\?/);
    expect(new URL(page.url()).searchParams.get('q')).toContain('actor.ip:"198.51.100.23"');
    await hydrated(page);
    await expect(page.locator('[data-testid="facet-total"] strong')).toHaveText('7');

    expect(errors, errors.join('\n')).toEqual([]);
  });
});
