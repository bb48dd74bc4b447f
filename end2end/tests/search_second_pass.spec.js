// Search, second pass (issue 17) in a real browser: the histogram above
// the results adds up to the result count and zooms by click, lower-case
// operators and networks work, count by a field, the busy state while a
// (deliberately delayed) search runs, and the page at 390 px wide.
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated, post } = require('./support');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-second-${run}`;

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

// A brute force from one network, then the login that worked, then what
// the attacker did: 6 failures, 1 success, 2 actions, 3 others' events.
const attacker = `mallory-${run}`;
test.beforeAll(async ({ request }) => {
  for (let i = 0; i < 6; i += 1) {
    await postEvent(request, { outcome: 'failure', actor: { id: attacker, type: 'user', ip: `198.51.100.${10 + i}` } });
  }
  await postEvent(request, { actor: { id: attacker, type: 'user', ip: '198.51.100.20' } });
  await postEvent(request, { category: 'data_access', action: 'data.export', actor: { id: attacker, type: 'user', ip: '198.51.100.20' } });
  await postEvent(request, { category: 'permission_change', action: 'role.grant', outcome: 'denied', actor: { id: attacker, type: 'user', ip: '198.51.100.20' } });
  for (let i = 0; i < 3; i += 1) {
    await postEvent(request, { actor: { id: `bob-${i}-${run}`, type: 'user', ip: '2001:db8::7' } });
  }
});

const rows = (page) => page.locator('tbody tr[data-event-id]');

async function openWhenAllArrived(page, path, count) {
  // The writer flushes about once a second: reload until every event is in.
  await expect(async () => {
    await page.goto(path);
    await expect(rows(page)).toHaveCount(count, { timeout: 1_000 });
  }).toPass({ timeout: 45_000 });
  await hydrated(page);
}

test('histogram counts equal the result count and a bar zooms in', async ({ page }) => {
  const errors = watchErrors(page);
  await openWhenAllArrived(page, `/search?tenant=${tenant}&range=1h`, 12);
  const histogram = page.getByTestId('histogram');
  await expect(histogram.locator('svg')).toBeVisible();
  await expect(page.getByTestId('histogram-total')).toHaveText('12');
  await expect(page.getByTestId('facet-total')).toContainText('12 matching events');
  await expect(histogram.locator('[data-outcome="failure"]')).toHaveText('failure 6');
  await expect(histogram.locator('[data-outcome="denied"]')).toHaveText('denied 1');
  // The bars' own values add up to the same count.
  const titles = await histogram.locator('rect.bar title').allTextContents();
  const summed = titles
    .map((t) => Number((t.match(/: (\d+) event/) || [])[1] || 0))
    .reduce((a, b) => a + b, 0);
  expect(summed, titles.join('\n')).toBe(12);
  await page.screenshot({ path: 'test-results/search-histogram.png', fullPage: true });

  // Clicking a bar with events searches its time range only.
  // (Only buckets with events have bars to click.)
  const bar = histogram.locator('a.bar-link').last();
  const bucketTitle = await bar.locator('title').textContent();
  await bar.click();
  await expect(page).toHaveURL(/from=.*to=/);
  // The zoomed search counts what its histogram shows, and the bucket's
  // own events at least.
  await expect(page.getByTestId('results')).toHaveAttribute('aria-busy', 'false');
  const zoomed = Number(await page.getByTestId('histogram-total').textContent());
  await expect(rows(page)).toHaveCount(zoomed);
  expect(zoomed).toBeGreaterThanOrEqual(Number(bucketTitle.match(/: (\d+) event/)[1]));
  await page.screenshot({ path: 'test-results/search-histogram-zoomed.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('lower-case operators, networks and count by', async ({ page }) => {
  const errors = watchErrors(page);
  await openWhenAllArrived(page, `/search?tenant=${tenant}&range=1h`, 12);
  const box = page.locator('#q');
  await box.fill(`outcome:failure or outcome:denied and actor:${attacker}`);
  await expect(page.getByTestId('query-error')).toHaveCount(0);
  await box.press('Enter');
  await expect(rows(page)).toHaveCount(7);
  await expect(page.getByTestId('histogram-total')).toHaveText('7');

  await box.fill('ip:198.51.100.16/28 not outcome:failure');
  await box.press('Enter');
  // .16–.31: the success at .20 and the two actions after it.
  await expect(rows(page)).toHaveCount(3);
  await expect(page.getByTestId('histogram-total')).toHaveText('3');

  await box.fill('occurred_at>=now-1h "2001:db8::7"');
  await box.press('Enter');
  await expect(rows(page)).toHaveCount(3);

  // Count by actor over the whole tenant: the attacker first, with 9.
  await box.fill('');
  await box.press('Enter');
  await expect(rows(page)).toHaveCount(12);
  await page.getByTestId('count-by-field').selectOption('actor');
  await expect(page).toHaveURL(/count_by=actor/);
  const table = page.getByTestId('count-by');
  await expect(table.locator('tbody tr')).toHaveCount(4);
  await expect(table.locator('tbody tr').first()).toHaveAttribute('data-value', attacker);
  await expect(table.getByTestId('count-by-events').first()).toHaveText('9');
  await page.screenshot({ path: 'test-results/search-count-by.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('a slow search shows the busy state and never an older answer as current', async ({ page }) => {
  const errors = watchErrors(page);
  await openWhenAllArrived(page, `/search?tenant=${tenant}&range=1h`, 12);
  const results = page.getByTestId('results');
  await expect(results).toHaveAttribute('aria-busy', 'false');
  // Delay every page request on purpose, so the busy state can be seen.
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  await page.route('**/api/search/page**', async (route) => {
    await gate;
    await route.continue();
  });
  const box = page.locator('#q');
  await box.fill('outcome:denied');
  await box.press('Enter');
  await expect(results).toHaveAttribute('aria-busy', 'true');
  await expect(page.getByTestId('search-busy')).toBeVisible();
  await expect(results).toHaveClass(/busy/);
  // The previous answer is still there, dimmed, not replaced.
  await expect(rows(page)).toHaveCount(12);
  await page.screenshot({ path: 'test-results/search-busy.png', fullPage: true });
  release();
  await expect(results).toHaveAttribute('aria-busy', 'false');
  await expect(page.getByTestId('search-busy')).toHaveCount(0);
  await expect(rows(page)).toHaveCount(1);
  await page.unroute('**/api/search/page**');
  expect(errors).toEqual([]);
});

for (const scheme of ['light', 'dark']) {
  test(`at 390 px wide the page fits the screen (${scheme})`, async ({ page }) => {
    const errors = watchErrors(page);
    await page.emulateMedia({ colorScheme: scheme });
    await page.setViewportSize({ width: 390, height: 844 });
    await openWhenAllArrived(page, `/search?tenant=${tenant}&range=1h`, 12);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    // The results come before the facets.
    const results = await page.getByTestId('results').boundingBox();
    const facets = await page.locator('aside.facets').boundingBox();
    expect(results.y).toBeLessThan(facets.y);
    await page.screenshot({ path: `test-results/search-390-${scheme}.png`, fullPage: true });
    expect(errors).toEqual([]);
  });
}

test('keyboard: / focuses the query, j and k move through results, Enter opens one', async ({ page }) => {
  const errors = watchErrors(page);
  await openWhenAllArrived(page, `/search?tenant=${tenant}&range=1h`, 12);
  await expect(page.locator('a.skip-link')).toHaveAttribute('href', '#results');
  await page.locator('h1').click();
  await page.keyboard.press('/');
  await expect(page.locator('#q')).toBeFocused();
  await page.locator('h1').click();
  const link = (n) => rows(page).nth(n).locator('a[href^="/events/"]').first();
  await page.keyboard.press('j');
  await expect(link(0)).toBeFocused();
  await page.keyboard.press('j');
  await page.keyboard.press('j');
  await expect(link(2)).toBeFocused();
  await page.keyboard.press('k');
  await expect(link(1)).toBeFocused();
  const id = await rows(page).nth(1).getAttribute('data-event-id');
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(new RegExp(`/events/[^/]+/${id}`));
  expect(errors).toEqual([]);
});
