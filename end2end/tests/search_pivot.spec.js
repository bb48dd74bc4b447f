// "Events around this one" keeps the analyst's place: the event they came
// from is marked among the events around it, and the next query they type
// searches the window they had before (here "Last 7 days"), not the
// pivot's ten minutes. The page must hydrate without a browser error.
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated, post } = require('./support');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-pivot-${run}`;
const alice = `alice-${run}`;
const HOUR = 3600 * 1000;

const postEvent = (request, occurredMs, fields) => post(request, {
  tenant_id: tenant,
  occurred_at: new Date(occurredMs).toISOString(),
  category: 'data_access',
  action: 'document.read',
  outcome: 'success',
  actor: { id: alice, type: 'user', ip: '10.0.0.7' },
  resource: { type: 'document', id: `doc-${run}` },
  source_service: 'e2e',
  metadata: { run },
  ...fields,
});

const row = (page, id) => page.locator(`tr[data-event-id="${id}"]`);

test('events around one: the anchor is marked, a new query gets the previous window back', async ({ page, request }) => {
  const errors = watchErrors(page);
  // The anchor ten minutes ago, a neighbour a minute before it (inside
  // ±5 min), and an earlier sign-in three hours ago (outside the pivot,
  // inside the last 7 days, the window the analyst starts on).
  const anchorAt = Date.now() - 10 * 60 * 1000;
  const anchor = await postEvent(request, anchorAt, { category: 'authentication', action: 'user.login' });
  const neighbour = await postEvent(request, anchorAt - 60 * 1000, {});
  const earlier = await postEvent(request, anchorAt - 3 * HOUR, { category: 'authentication', action: 'user.login', outcome: 'failure' });

  // The writer flushes about once a second: reload until all three are in.
  await expect(async () => {
    await page.goto(`/search?tenant=${tenant}&range=7d`);
    await expect(page.locator('tbody tr')).toHaveCount(3, { timeout: 1_000 });
  }).toPass({ timeout: 45_000 });
  await hydrated(page);

  // Open the anchor event and follow "Events around this one".
  await row(page, anchor).locator('td a').first().click();
  await expect(page).toHaveURL(new RegExp(`/events/${tenant}/${anchor}\\?at=\\d+`));
  const around = page.getByTestId('pivot-around');
  await expect(around).toHaveAttribute('href', new RegExp(`tenant=${tenant}&from=.*&anchor=${anchor}&anchor_at=\\d+&anchor_h=[0-9a-f]+&prev_range=7d`));
  await around.click();
  await expect(page).toHaveURL(new RegExp(`/search\\?tenant=${tenant}&from=.*&to=.*&anchor=${anchor}`));
  await hydrated(page);

  // Only the ten minutes around it, the anchor marked and said where it is.
  await expect(row(page, anchor)).toBeVisible();
  await expect(row(page, neighbour)).toBeVisible();
  await expect(row(page, earlier)).toHaveCount(0);
  await expect(row(page, anchor)).toHaveAttribute('aria-current', 'true');
  await expect(row(page, anchor)).toHaveClass(/\banchor\b/);
  await expect(row(page, neighbour)).not.toHaveAttribute('aria-current', 'true');
  const notice = page.getByTestId('pivot-notice');
  await expect(notice).toContainText(`Events within ±5 min of user.login by ${alice} at`);
  await expect(page.getByTestId('pivot-back')).toHaveText('Back to Last 7 days');
  await page.screenshot({ path: 'test-results/search-pivot.png', fullPage: true });

  // A new query leaves the pivot: the last 7 days again, not the pivot's
  // ten minutes, and no anchor.
  const box = page.locator('#q');
  await box.fill('action:user.login');
  await box.press('Enter');
  await expect(page).toHaveURL(new RegExp(`/search\\?q=action%3Auser\\.login&tenant=${tenant}&range=7d$`));
  await expect(row(page, anchor)).toBeVisible();
  await expect(row(page, earlier)).toBeVisible();
  await expect(row(page, neighbour)).toHaveCount(0);
  await expect(page.locator('tbody tr')).toHaveCount(2);
  await expect(notice).toHaveCount(0);
  await expect(page.locator('tr[aria-current="true"]')).toHaveCount(0);
  await expect(page.locator('#search-from')).toHaveValue('');

  // Back in the pivot, its "Back to" link drops it too.
  await page.goBack();
  await expect(row(page, anchor)).toHaveAttribute('aria-current', 'true');
  await page.getByTestId('pivot-back').click();
  await expect(page).toHaveURL(new RegExp(`/search\\?tenant=${tenant}&range=7d$`));
  await expect(page.locator('tbody tr')).toHaveCount(3);

  expect(errors, errors.join('\n')).toEqual([]);
});
