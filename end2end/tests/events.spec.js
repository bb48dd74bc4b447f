// The Events page: an event posted over the ingest API shows up, and the
// tenant filter changes what the list shows, in a real browser.
const { test, expect } = require('@playwright/test');
const { hydrated, post } = require('./support');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenantA = `e2e-a-${run}`;
const tenantB = `e2e-b-${run}`;

const postEvent = (request, tenant, action, actor) => post(request, {
  tenant_id: tenant,
  occurred_at: new Date().toISOString(),
  category: 'permission_change',
  action,
  outcome: 'denied',
  actor: { id: actor, type: 'user', ip: '203.0.113.5' },
  resource: { type: 'role', id: 'admin' },
  source_service: 'e2e',
  metadata: { run },
});

// The writer flushes about once a second; reload until the row is there.
async function gotoUntilVisible(page, url, locator) {
  await expect(async () => {
    await page.goto(url);
    await expect(locator(page)).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 45_000 });
}

test('events page lists a posted event and filters by tenant', async ({ page, request }) => {
  const idA = await postEvent(request, tenantA, 'role.grant', `alice-${run}`);
  const idB = await postEvent(request, tenantB, 'role.revoke', `bob-${run}`);

  const rowA = (p) => p.locator(`tr[data-event-id="${idA}"]`);
  const rowB = (p) => p.locator(`tr[data-event-id="${idB}"]`);

  // Unfiltered: both tenants' events are listed, newest first.
  await gotoUntilVisible(page, '/?range=1h', rowA);
  await expect(rowB(page)).toBeVisible();
  await expect(rowA(page)).toContainText('role.grant');
  await expect(rowA(page)).toContainText(`alice-${run}`);
  await expect(rowA(page)).toContainText('denied');

  // Wait for hydration (the select becomes interactive), then filter.
  const tenantSelect = page.locator('#tenant-filter');
  await expect(tenantSelect.locator(`option[value="${tenantA}"]`)).toHaveCount(1);
  await hydrated(page);
  await tenantSelect.selectOption(tenantA);
  await expect(page).toHaveURL(new RegExp(`tenant=${tenantA}`));

  await expect(rowA(page)).toBeVisible();
  await expect(rowB(page)).toHaveCount(0);
  await expect(page.getByTestId('events-summary')).toContainText(`tenant ${tenantA}`);
  await page.screenshot({ path: 'test-results/events-filtered.png', fullPage: true });

  // Switch to the other tenant: the list follows.
  await tenantSelect.selectOption(tenantB);
  await expect(page).toHaveURL(new RegExp(`tenant=${tenantB}`));
  await expect(rowB(page)).toBeVisible();
  await expect(rowA(page)).toHaveCount(0);

  // The filter survives a reload (it lives in the URL).
  await page.reload();
  await expect(rowB(page)).toBeVisible();
  await expect(tenantSelect).toHaveValue(tenantB);
});

test('time range narrows the list and an empty window says so', async ({ page, request }) => {
  const tenant = `e2e-range-${run}`;
  const id = await post(request, {
    tenant_id: tenant,
    occurred_at: Date.now() - 3 * 3600 * 1000, // three hours ago
    category: 'authentication',
    action: 'user.login',
    outcome: 'success',
    actor: { id: 'carol', type: 'user' },
    source_service: 'e2e',
  });
  const row = (p) => p.locator(`tr[data-event-id="${id}"]`);

  await gotoUntilVisible(page, `/?tenant=${tenant}&range=24h`, row);
  await page.goto(`/?tenant=${tenant}&range=1h`);
  await expect(page.getByTestId('events-empty')).toContainText('No events');
  await expect(row(page)).toHaveCount(0);
});

test('pages through a window: every event once, newest first, and back to the newest', async ({ page, request }) => {
  // One page and a half (the page holds 100), in one batch.
  const tenant = `e2e-pages-${run}`;
  const now = Date.now();
  const sent = Array.from({ length: 150 }, (_, i) => ({
    event_id: `page-${run}-${String(i).padStart(3, '0')}`,
    tenant_id: tenant,
    occurred_at: now - 60_000 - i * 1000, // a second apart, page-0 the newest
    category: 'data_access',
    action: 'record.read',
    outcome: 'success',
    actor: { id: `reader-${run}`, type: 'user' },
    source_service: 'e2e',
  }));
  const response = await request.post('/api/v1/events/batch', { data: sent });
  expect(response.status(), await response.text()).toBe(202);

  const rows = (p) => p.locator('[data-testid="events-table"] tbody tr');
  const ids = async (p) => rows(p).evaluateAll((trs) => trs.map((tr) => tr.dataset.eventId));
  const first = `/?tenant=${tenant}&range=1h`;
  await expect(async () => {
    await page.goto(first);
    await expect(rows(page)).toHaveCount(100, { timeout: 1_000 });
    await expect(page.getByTestId('events-older')).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 45_000 });
  const pageOne = await ids(page);
  expect(pageOne).toEqual(sent.slice(0, 100).map((e) => e.event_id));
  await expect(page.getByTestId('events-newest')).toHaveCount(0);

  await hydrated(page);
  await page.getByTestId('events-older').click();
  await expect(page).toHaveURL(/cursor=/);
  await expect(rows(page)).toHaveCount(50);
  expect(await ids(page)).toEqual(sent.slice(100).map((e) => e.event_id));
  await expect(page.getByTestId('events-summary')).toContainText('older than the page before');
  await expect(page.getByTestId('events-older')).toHaveCount(0);
  await page.screenshot({ path: 'test-results/events-page-two.png', fullPage: true });

  await page.getByTestId('events-newest').click();
  await expect(page).not.toHaveURL(/cursor=/);
  await expect(rows(page)).toHaveCount(100);
  expect(await ids(page)).toEqual(pageOne);
});

test('unknown pages answer 404 with a way back', async ({ page }) => {
  const response = await page.goto('/no-such-page');
  expect(response.status()).toBe(404);
  await expect(page.getByText('Page not found')).toBeVisible();
});
