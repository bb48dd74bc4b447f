// Search results sorted by a column (issue 17) in a real browser: the
// Actor header is a button that orders the results on the server, says so
// with an arrow and aria-sort, keeps the order in the URL across a reload,
// and the next page continues in order; a second click flips it, the live
// tail waits for newest first, and an unknown order is an error naming the
// parameter.
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated, post } = require('./support');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-sort-${run}`;
// Posted in this order, so newest first is not alphabetical.
const actors = ['carol', 'alice', 'erin', 'bob', 'dave'].map((a) => `${a}-${run}`);
const EVENTS = 130;

const rows = (page) => page.locator('tbody tr[data-event-id]');
const home = `/search?tenant=${tenant}&range=1h`;

test.beforeAll(async ({ request }) => {
  // 130 events, 26 per actor: more than a page of 100.
  for (let start = 0; start < EVENTS; start += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, k) => post(request, {
      tenant_id: tenant,
      occurred_at: new Date(Date.now() - (start + k) * 1000).toISOString(),
      category: 'data_access',
      action: 'document.read',
      outcome: 'success',
      actor: { id: actors[(start + k) % actors.length], type: 'user', ip: '10.0.0.7' },
      source_service: 'e2e',
    })));
  }
});

// The actor of every row shown, read from the column headed "Actor".
async function shownActors(page) {
  const index = await page.locator('thead th').evaluateAll(
    (ths) => ths.findIndex((th) => th.textContent.trim().startsWith('Actor')),
  );
  expect(index).toBeGreaterThanOrEqual(0);
  return rows(page).locator(`td:nth-child(${index + 1})`).allTextContents();
}

async function shownIds(page) {
  return rows(page).evaluateAll((trs) => trs.map((tr) => tr.dataset.eventId));
}

test('sorting by actor: header button, aria-sort, URL, reload, next page', async ({ page }) => {
  const errors = watchErrors(page);
  // The writer flushes about once a second: reload until every event is in.
  // Both the results and the facets must show them: the page's queries
  // take turns, so a batch stored between them can reach the facets of a
  // load whose results were read just before it (the snapshot is on
  // received_at, which a batch has before it is stored).
  await expect(async () => {
    await page.goto(home);
    await expect(rows(page)).toHaveCount(100, { timeout: 1_000 });
    await expect(page.getByTestId('facet-total')).toContainText(`${EVENTS} matching events`, { timeout: 1_000 });
  }).toPass({ timeout: 60_000 });
  await hydrated(page);
  await expect(rows(page)).toHaveCount(100);
  // Newest first by default: Time carries aria-sort, Actor does not.
  await expect(page.locator('th[aria-sort]')).toHaveCount(1);
  await expect(page.locator('th[aria-sort="descending"]')).toContainText('Time');
  expect((await shownActors(page))[0]).toBe(actors[0]);

  const header = page.getByTestId('sort-actor');
  await expect(header).toHaveJSProperty('tagName', 'BUTTON');
  await header.click();
  await expect(page).toHaveURL(/[?&]sort=actor&dir=asc(&|$)/);
  const actorTh = page.locator('th', { has: page.getByTestId('sort-actor') });
  await expect(actorTh).toHaveAttribute('aria-sort', 'ascending');
  await expect(actorTh.locator('.sort-arrow')).toHaveText('▲');
  await expect(page.getByTestId('search-summary')).toContainText('by Actor A to Z');
  // The alphabetically first actor heads the page, and the page is in order.
  await expect.poll(async () => (await shownActors(page))[0]).toBe(`alice-${run}`);
  const first = await shownActors(page);
  expect(first).toHaveLength(100);
  expect([...first].sort()).toEqual(first);
  const firstIds = await shownIds(page);
  await page.screenshot({ path: 'test-results/search-sort-actor.png' });
  // The facets do not change with the order.
  await expect(page.getByTestId('facet-total')).toContainText(`${EVENTS} matching events`);
  // The live tail only continues the newest events: off, and says why.
  await expect(page.getByTestId('tail-switch')).toHaveAttribute('aria-disabled', 'true');
  await expect(page.getByTestId('tail-switch')).toHaveAttribute('title', /newest first/);

  // A reload keeps the order.
  await page.reload();
  await hydrated(page);
  await expect(actorTh).toHaveAttribute('aria-sort', 'ascending');
  expect(await shownActors(page)).toEqual(first);

  // The next page continues in order: no row twice, none missing.
  await page.getByTestId('next-page').click();
  await expect(page).toHaveURL(/cursor=actor-a\./);
  await expect(page).toHaveURL(/sort=actor&dir=asc/);
  await expect(rows(page)).toHaveCount(EVENTS - 100);
  const second = await shownActors(page);
  expect([...second].sort()).toEqual(second);
  expect(second[0] >= first[first.length - 1]).toBe(true);
  expect(second[second.length - 1]).toBe(`erin-${run}`);
  const all = new Set([...firstIds, ...(await shownIds(page))]);
  expect(all.size).toBe(EVENTS);
  await expect(page.getByTestId('newest-page')).toHaveText('« First page');

  // Back returns to the first page of the order.
  await page.goBack();
  await expect(page).not.toHaveURL(/cursor=/);
  await expect(actorTh).toHaveAttribute('aria-sort', 'ascending');
  await expect(rows(page)).toHaveCount(100);
  await expect.poll(() => shownIds(page)).toEqual(firstIds);

  // A second click flips the order; it is keyboard-usable (a real button).
  await page.getByTestId('sort-actor').focus();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/sort=actor&dir=desc/);
  await expect(actorTh).toHaveAttribute('aria-sort', 'descending');
  await expect.poll(async () => (await shownActors(page))[0]).toBe(`erin-${run}`);

  // Time's first click is newest first again: the default order, which
  // leaves the URL and lets the tail back on.
  await page.getByTestId('sort-time').click();
  await expect(page).not.toHaveURL(/sort=/);
  await expect(page.locator('th[aria-sort="descending"]')).toContainText('Time');
  await expect(page.getByTestId('tail-switch')).not.toHaveAttribute('aria-disabled', 'true');
  expect(errors).toEqual([]);
});

test('an unknown order is an error naming the parameter', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto(`${home}&sort=bogus`);
  await hydrated(page);
  await expect(page.getByTestId('search-error')).toContainText('sort: unknown column "bogus"');
  await page.goto(`${home}&sort=metadata.ticket`);
  await expect(page.getByTestId('search-error')).toContainText('sort: results cannot be ordered by metadata.ticket');
  // Failed server-function calls log as console errors; only those are expected.
  expect(errors.filter((e) => !/400|Bad Request/.test(e))).toEqual([]);
});
