// Search, issue 17, in a real browser: the live tail (turned on from the
// toolbar, it shows an event posted after it was turned on, newest on top;
// paused, it counts new events until resumed), the query bar's
// autocomplete used by keyboard alone, and a drag across the histogram
// that zooms the URL's range.
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated, post } = require('./support');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-tail-${run}`;

const postEvent = (request, fields) => post(request, {
  tenant_id: tenant,
  occurred_at: new Date().toISOString(),
  category: 'authentication',
  action: 'user.login',
  outcome: 'success',
  actor: { id: `alice-${run}`, type: 'user', ip: '10.0.0.7' },
  source_service: 'e2e',
  ...fields,
});

test('live tail shows an event posted after it was turned on, and pauses', async ({ page, request }) => {
  const errors = watchErrors(page);
  await page.goto(`/search?tenant=${tenant}&range=1h`);
  await hydrated(page);
  const tailRows = page.getByTestId('tail-results').locator('tbody tr[data-event-id]');

  // The switch is a link: the URL keeps the tail.
  const toggle = page.getByTestId('tail-switch');
  await expect(toggle).toHaveAttribute('aria-pressed', 'false');
  await toggle.click();
  await expect(page).toHaveURL(/[?&]tail=1/);
  await expect(toggle).toHaveAttribute('aria-pressed', 'true');
  const status = page.getByTestId('tail-status');
  await expect(status).toContainText('Live');

  const first = await postEvent(request, { action: 'tail.first' });
  await expect(tailRows.first()).toHaveAttribute('data-event-id', first, { timeout: 45_000 });
  const second = await postEvent(request, { action: 'tail.second' });
  // Newest on top.
  await expect(tailRows.first()).toHaveAttribute('data-event-id', second, { timeout: 45_000 });
  await expect(tailRows).toHaveCount(2);

  // Paused: counted, not shown; resumed: shown.
  const pause = page.getByTestId('tail-pause');
  await pause.click();
  await expect(pause).toHaveAttribute('aria-pressed', 'true');
  await expect(status).toContainText('Paused — 0 new');
  const third = await postEvent(request, { action: 'tail.third' });
  await expect(pause).toHaveText('1 new — resume', { timeout: 45_000 });
  await expect(tailRows).toHaveCount(2);
  await pause.click();
  await expect(tailRows.first()).toHaveAttribute('data-event-id', third);
  await expect(tailRows).toHaveCount(3);

  // Off again: the tail is gone and the URL says so.
  await toggle.click();
  await expect(page).not.toHaveURL(/tail=1/);
  await expect(page.getByTestId('live-tail')).toHaveCount(0);
  expect(errors).toEqual([]);
});

const rows = (page) => page.getByTestId('search-results').locator('tbody tr[data-event-id]');

async function openWhenAllArrived(page, path, count) {
  // The writer flushes about once a second: reload until every event is in.
  await expect(async () => {
    await page.goto(path);
    await expect(rows(page)).toHaveCount(count, { timeout: 1_000 });
  }).toPass({ timeout: 45_000 });
  await hydrated(page);
}

test.describe('with events stored', () => {
  const seeded = `e2e-suggest-${run}`;
  const attacker = `mallory-${run}`;
  test.beforeAll(async ({ request }) => {
    for (let i = 0; i < 3; i += 1) {
      await post(request, {
        tenant_id: seeded,
        occurred_at: new Date().toISOString(),
        category: 'authentication',
        action: 'user.login',
        outcome: 'failure',
        actor: { id: attacker, type: 'user', ip: '198.51.100.9' },
        source_service: 'e2e',
      });
    }
  });

  test('autocomplete by keyboard completes a field and a value', async ({ page }) => {
    const errors = watchErrors(page);
    await openWhenAllArrived(page, `/search?tenant=${seeded}&range=1h`, 3);
    const q = page.locator('#q');
    const list = page.getByTestId('q-suggestions');
    await expect(q).toHaveAttribute('role', 'combobox');
    await q.fill('');
    await q.pressSequentially('acto');
    await expect(q).toHaveAttribute('aria-expanded', 'true');
    await expect(list.getByRole('option').first()).toHaveText('actor');
    // Escape closes; typing opens again.
    await q.press('Escape');
    await expect(q).toHaveAttribute('aria-expanded', 'false');
    await expect(list).toBeHidden();
    await q.pressSequentially('r');
    await expect(q).toHaveAttribute('aria-expanded', 'true');
    await q.press('ArrowDown');
    await expect(q).toHaveAttribute('aria-activedescendant', 'q-option-0');
    await expect(list.locator('#q-option-0')).toHaveAttribute('aria-selected', 'true');
    await q.press('Enter');
    await expect(q).toHaveValue('actor:');
    // The field's values follow at once, from the facets, with counts.
    await q.pressSequentially('mal');
    await expect(list.getByRole('option').first()).toContainText(attacker);
    await expect(list.getByRole('option').first()).toContainText('3');
    await q.press('Tab');
    await expect(q).toHaveValue(`actor:${attacker} `);
    await expect(q).toHaveAttribute('aria-expanded', 'false');
    await q.press('Enter');
    await expect(page).toHaveURL(new RegExp(`q=actor(%3A|:)${attacker}`));
    await expect(rows(page)).toHaveCount(3);
    expect(errors).toEqual([]);
  });

  test('a drag across the histogram zooms the range in the URL', async ({ page }) => {
    const errors = watchErrors(page);
    await openWhenAllArrived(page, `/search?tenant=${seeded}&range=1h`, 3);
    await expect(page).not.toHaveURL(/from=/);
    const bars = page.getByTestId('histogram').locator('rect.bar');
    await expect(bars.first()).toBeVisible();
    const first = await bars.first().boundingBox();
    const last = await bars.last().boundingBox();
    const y = first.y + first.height / 2;
    // From just left of the first bar to just right of the last.
    await page.mouse.move(first.x - 15, y);
    await page.mouse.down();
    await page.mouse.move(first.x + 5, y, { steps: 4 });
    await page.mouse.move(last.x + last.width + 15, y, { steps: 6 });
    await expect(page.locator('.drag-band')).toBeVisible();
    await page.mouse.up();
    await expect(page).toHaveURL(/[?&]from=[^&]+&to=/);
    // The zoomed window still holds every event, and says so.
    await expect(rows(page)).toHaveCount(3);
    await expect(page.getByTestId('histogram-total')).toHaveText('3');
    expect(errors).toEqual([]);
  });
});
