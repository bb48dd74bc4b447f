// The Dashboard in a real browser: a burst of 50 failed logins by one actor
// in a fresh tenant tops "Top actors by failures"; its bar opens Search over
// exactly those 50 events. The page must hydrate without a browser error.
const { test, expect } = require('@playwright/test');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-dash-${run}`;
const brute = `brute-${run}`;
const alice = `alice-${run}`;

async function postEvent(request, fields) {
  const response = await request.post('/api/v1/events', {
    data: {
      tenant_id: tenant,
      occurred_at: new Date().toISOString(),
      category: 'authentication',
      action: 'user.login',
      outcome: 'success',
      actor: { id: alice, type: 'user', ip: '10.0.0.7' },
      source_service: 'e2e',
      ...fields,
    },
  });
  expect(response.status(), await response.text()).toBe(202);
}

function watchErrors(page) {
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  return errors;
}

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
  await page.locator('body[data-hydrated="true"]').waitFor({ timeout: 30_000 });

  // The first paint already holds the charts: SVG with a title per bar.
  await expect(page.locator('[data-testid="panel-events"] svg[role="img"]')).toHaveCount(1);
  await expect(page.locator('[data-testid="panel-outcomes"]')).toContainText('% failed or denied');
  await expect(firstBar.locator('title')).toHaveText(`${brute}: 50 failed or denied events`);
  // The "as table" view says the same, in order.
  await topFailures.locator('summary').click();
  const firstRow = topFailures.locator('tbody tr').first();
  await expect(firstRow.locator('th')).toHaveText(brute);
  await expect(firstRow.locator('td')).toHaveText('50');

  await firstBar.click();
  await expect(page).toHaveURL(/\/search\?/);
  const url = new URL(page.url());
  expect(url.searchParams.get('tenant')).toBe(tenant);
  expect(url.searchParams.get('q')).toContain(`actor:"${brute}"`);
  await page.locator('body[data-hydrated="true"]').waitFor({ timeout: 30_000 });
  await expect(page.locator('[data-testid="facet-total"] strong')).toHaveText('50');
  await expect(page.locator('[data-testid="search-results"] tbody tr')).toHaveCount(50);

  expect(errors, errors.join('\n')).toEqual([]);
});
