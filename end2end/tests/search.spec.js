// The Search page in a real browser: type a query (errors show as you
// type), narrow with a facet, open an event, pivot to everything by its
// actor, go back, export CSV, reload, choose columns, and see newer events
// arrive. The page must hydrate without a single browser error.
const fs = require('fs');
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated, post } = require('./support');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-search-${run}`;
const alice = `alice-${run}`;
const bob = `bob-${run}`;
const doc = `doc-${run}`;

const postEvent = (request, fields) => post(request, {
  tenant_id: tenant,
  occurred_at: new Date().toISOString(),
  category: 'data_access',
  action: 'document.read',
  outcome: 'success',
  actor: { id: alice, type: 'user', ip: '10.0.0.7' },
  resource: { type: 'document', id: doc },
  source_service: 'e2e',
  metadata: { run, note: 'seen in the browser' },
  ...fields,
});

const row = (page, id) => page.locator(`tr[data-event-id="${id}"]`);

test('an investigation: query, facet, event, pivot, back, export, reload', async ({ page, request }) => {
  const errors = watchErrors(page);
  const failedLogin = await postEvent(request, { category: 'authentication', action: 'user.login', outcome: 'failure' });
  const aliceRead = await postEvent(request, {});
  const bobRead = await postEvent(request, { actor: { id: bob, type: 'user', ip: '203.0.113.9' } });
  const bobGrant = await postEvent(request, {
    category: 'permission_change', action: 'role.grant', outcome: 'denied',
    actor: { id: bob, type: 'user', ip: '203.0.113.9' }, resource: { type: 'role', id: 'admin' },
  });

  // The writer flushes about once a second: reload until all four are in.
  await expect(async () => {
    await page.goto(`/search?tenant=${tenant}&range=1h`);
    await expect(row(page, bobGrant)).toBeVisible({ timeout: 1_000 });
    await expect(page.locator('tbody tr')).toHaveCount(4, { timeout: 1_000 });
  }).toPass({ timeout: 45_000 });
  await hydrated(page);
  await expect(page.getByTestId('facet-total')).toContainText('4 matching events');

  // A mistake is shown while typing, with its position, and nothing is sent.
  const box = page.locator('#q');
  await box.fill('actr:bob');
  const marker = page.getByTestId('query-error');
  await expect(marker).toContainText('unknown field "actr"');
  await expect(marker).toHaveAttribute('data-position', '0');
  await expect(box).toHaveAttribute('aria-invalid', 'true');
  await page.screenshot({ path: 'test-results/search-query-error.png' });
  await box.press('Enter');
  await expect(page).not.toHaveURL(/actr/);

  // A valid query runs on Enter and lands in the URL.
  await box.fill('action:document.read');
  await expect(marker).toHaveCount(0);
  await box.press('Enter');
  await expect(page).toHaveURL(/q=action%3Adocument\.read/);
  await expect(row(page, bobRead)).toBeVisible();
  await expect(row(page, aliceRead)).toBeVisible();
  await expect(row(page, failedLogin)).toHaveCount(0);
  await expect(page.getByTestId('facet-total')).toContainText('2 matching events');

  // A facet value narrows the query to it.
  await page.locator(`section[data-facet="actor_id"] li[data-facet-value="${bob}"] a.facet-value`).click();
  await expect(page).toHaveURL(new RegExp(`q=action%3Adocument\\.read%20actor%3A%22${bob}%22`));
  await expect(row(page, bobRead)).toBeVisible();
  await expect(row(page, aliceRead)).toHaveCount(0);
  await expect(box).toHaveValue(`action:document.read actor:"${bob}"`);
  await page.screenshot({ path: 'test-results/search-facet.png', fullPage: true });
  const facetUrl = page.url();

  // Open the event: every field, its metadata, its provenance.
  await row(page, bobRead).locator('td a').first().click();
  await expect(page).toHaveURL(new RegExp(`/events/${tenant}/${bobRead}\\?at=\\d+`));
  await expect(page.getByTestId('event-fields')).toContainText(bob);
  await expect(page.getByTestId('event-fields')).toContainText('203.0.113.9');
  await expect(page.getByTestId('event-metadata')).toContainText('seen in the browser');
  await expect(page.getByTestId('event-provenance')).toContainText('Schema id');
  await expect(page.getByTestId('pivot-around')).toHaveAttribute('href', new RegExp(`tenant=${tenant}&from=`));
  await page.screenshot({ path: 'test-results/search-event.png', fullPage: true });

  // Pivot: everything this actor did in the same window.
  await page.getByTestId('pivot-actor').click();
  await expect(page).toHaveURL(new RegExp(`/search\\?q=actor%3A%22${bob}%22&tenant=${tenant}&range=1h`));
  await expect(row(page, bobRead)).toBeVisible();
  await expect(row(page, bobGrant)).toBeVisible();
  await expect(page.locator('tbody tr')).toHaveCount(2);

  // Back to the event, back to the facet search, as it was.
  await page.goBack();
  await expect(page.getByTestId('event-title')).toContainText('document.read');
  await page.goBack();
  await expect(page).toHaveURL(facetUrl);
  await expect(row(page, bobRead)).toBeVisible();
  await expect(row(page, aliceRead)).toHaveCount(0);
  await expect(box).toHaveValue(`action:document.read actor:"${bob}"`);

  // Export CSV: a real download of exactly this search.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('export-csv').click(),
  ]);
  expect(download.suggestedFilename()).toMatch(new RegExp(`^attest-events-${tenant}-\\d{8}T\\d{6}Z\\.csv$`));
  const csv = fs.readFileSync(await download.path(), 'utf8');
  const lines = csv.trim().split('\n');
  expect(lines[0]).toContain('"event_id","tenant_id","occurred_at"');
  expect(lines).toHaveLength(2);
  expect(lines[1]).toContain(bobRead);
  // The page followed the download to its end.
  await expect(page.getByTestId('export-progress')).toContainText('Export finished: 1 row.');
  await page.screenshot({ path: 'test-results/search-export.png', fullPage: true });

  // Reload keeps everything: it all lives in the URL.
  await page.reload();
  await hydrated(page);
  await expect(box).toHaveValue(`action:document.read actor:"${bob}"`);
  await expect(row(page, bobRead)).toBeVisible();
  await expect(page.locator('#search-tenant')).toHaveValue(tenant);

  // The export itself is in the tenant's trail, by who made it.
  for (let attempt = 0; attempt < 30; attempt += 1) {
    await page.goto(`/search?tenant=${tenant}&range=1h&q=action:data.export`);
    await hydrated(page);
    if (await page.locator('tbody tr').count()) break;
    await page.waitForTimeout(1000);
  }
  await expect(page.locator('tbody tr')).toHaveCount(1);
  await expect(page.locator('tbody tr')).toContainText('e2e-analyst');

  // Exclude a value with its "−" button: the four events and the export
  // record, less the denied grant.
  await page.goto(`/search?tenant=${tenant}&range=1h`);
  await hydrated(page);
  await page.locator(`section[data-facet="outcome"] li[data-facet-value="denied"] a.facet-exclude`).click();
  await expect(page).toHaveURL(/q=-outcome%3A%22denied%22/);
  await expect(row(page, bobGrant)).toHaveCount(0);
  await expect(page.locator('tbody tr')).toHaveCount(4);

  // Columns: show the event id, and the choice is in the URL.
  await page.getByTestId('column-chooser').locator('summary').click();
  await page.locator('#col-event_id').check();
  await expect(page).toHaveURL(/cols=time%2Ctenant.*event_id/);
  await expect(page.locator('thead')).toContainText('Event id');
  await expect(row(page, aliceRead)).toContainText(aliceRead);

  expect(errors, errors.join('\n')).toEqual([]);
});

test('newer events are announced and shown on request', async ({ page, request }) => {
  const errors = watchErrors(page);
  const first = await postEvent(request, { action: 'newer.first' });
  await expect(async () => {
    await page.goto(`/search?tenant=${tenant}&range=1h&q=action%3Anewer.*`);
    await expect(row(page, first)).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 45_000 });
  await hydrated(page);

  const second = await postEvent(request, { action: 'newer.second' });
  const notice = page.getByTestId('newer-notice');
  await expect(notice).toContainText('1 newer event', { timeout: 45_000 });
  await expect(row(page, second)).toHaveCount(0);
  await page.screenshot({ path: 'test-results/search-newer.png', fullPage: true });
  await notice.getByRole('link', { name: 'show' }).click();
  await expect(row(page, second)).toBeVisible();
  await expect(notice).toHaveCount(0);
  expect(errors, errors.join('\n')).toEqual([]);
});

test('a query error from a shared link is explained, not a crash', async ({ page }) => {
  const errors = watchErrors(page);
  const response = await page.goto('/search?q=tenant%3Aacme');
  expect(response.status()).toBe(200);
  await expect(page.getByTestId('search-error')).toContainText('at 0');
  await hydrated(page);
  await expect(page.getByTestId('query-error')).toContainText('tenant');
  // Server-function errors answer 400; the browser logs the failed request.
  expect(errors.filter((e) => !e.includes('400'))).toEqual([]);
});

test('a search is saved, opened again and deleted', async ({ page }) => {
  const errors = watchErrors(page);
  const name = `failures ${run}`;
  await page.goto(`/search?q=outcome%3Afailure&tenant=${tenant}&range=1h`);
  await hydrated(page);
  const saved = page.getByTestId('saved-searches');
  await saved.locator('#saved-name').fill(name);
  await saved.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(saved.getByRole('link', { name })).toBeVisible();
  await page.screenshot({ path: 'test-results/search-saved.png', fullPage: true });

  // Another day, another search: the saved one is a click away.
  await page.goto('/search');
  await hydrated(page);
  await page.getByTestId('saved-searches').getByRole('link', { name }).click();
  await expect(page).toHaveURL(new RegExp(`/search\\?q=outcome%3Afailure&tenant=${tenant}&range=1h$`));
  await expect(page.locator('#q')).toHaveValue('outcome:failure');
  await expect(page.locator('#search-tenant')).toHaveValue(tenant);

  await page.getByRole('button', { name: `Delete the saved search ${name}` }).click();
  await expect(page.getByTestId('saved-searches').getByRole('link', { name })).toHaveCount(0);
  expect(errors, errors.join('\n')).toEqual([]);
});
