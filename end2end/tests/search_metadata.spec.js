// metadata.* keys in Search (issue 17) in a real browser: a metadata key
// chosen as a column shows each event's value and stays in the URL; a
// metadata facet opens to its values and a click adds the term to the
// query; the query bar suggests the metadata keys seen recently and, once
// a metadata facet is open, its values; "Count by" a metadata key lists its
// values with their counts and the events without it, each a link that
// finds exactly that many.
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated, post } = require('./support');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-meta-${run}`;
const ticket = (n) => `SEC-${run}-${n}`;

const postEvent = (request, fields) => post(request, {
  tenant_id: tenant,
  occurred_at: new Date().toISOString(),
  category: 'data_access',
  action: 'document.read',
  outcome: 'success',
  actor: { id: `alice-${run}`, type: 'user', ip: '10.0.0.7' },
  source_service: 'e2e',
  ...fields,
});

const rows = (page) => page.locator('tbody tr[data-event-id]');
const row = (page, id) => page.locator(`tbody tr[data-event-id="${id}"]`);

async function openWhenAllArrived(page, path, count) {
  // The writer flushes about once a second: reload until every event is in.
  await expect(async () => {
    await page.goto(path);
    await expect(rows(page)).toHaveCount(count, { timeout: 1_000 });
  }).toPass({ timeout: 45_000 });
  await hydrated(page);
}

// How long a scope's recent metadata keys may be answered from the
// server's cache (60 s, docs/SEARCH.md), with room for the page loads.
const KEYS_CACHED_MS = 70_000;

// Three events with a ticket (two share one), two of them with a region,
// and one without metadata.
const ids = {};
test.beforeAll(async ({ request }) => {
  ids.first = await postEvent(request, { metadata: { ticket: ticket(1), region: 'eu-west-1' } });
  ids.second = await postEvent(request, { metadata: { ticket: ticket(1) } });
  ids.third = await postEvent(request, { metadata: { ticket: ticket(2), region: 'us-east-1' } });
  ids.bare = await postEvent(request, {});
});

const home = `/search?tenant=${tenant}&range=1h`;

test('a metadata column shows each event\'s value and lives in the URL', async ({ page }) => {
  const errors = watchErrors(page);
  await openWhenAllArrived(page, home, 4);
  const chooser = page.getByTestId('column-chooser');
  // The chooser stays open across the navigation a choice makes: open it
  // only when it is closed (a click on an open one closes it).
  const openChooser = async () => {
    if (!(await chooser.evaluate((d) => d.open))) await chooser.locator('summary').click();
    await expect(chooser).toHaveAttribute('open', '');
  };
  await openChooser();
  // The search's most common keys are offered beside the fixed columns.
  const ticketBox = chooser.locator('[id="col-metadata.ticket"]');
  await expect(ticketBox).not.toBeChecked();
  await ticketBox.check();
  await expect(page).toHaveURL(/cols=[^&]*metadata\.ticket/);
  await expect(page.locator('thead')).toContainText('metadata.ticket');
  const cells = page.locator('td[data-metadata-key="ticket"]');
  await expect(cells).toHaveCount(4);
  await expect(row(page, ids.first).locator('td[data-metadata-key="ticket"]')).toHaveText(ticket(1));
  await expect(row(page, ids.third).locator('td[data-metadata-key="ticket"]')).toHaveText(ticket(2));
  await expect(row(page, ids.bare).locator('td[data-metadata-key="ticket"]')).toHaveText('—');

  // A key typed in adds its column too; one the query language would
  // refuse is explained, not added.
  await openChooser();
  const key = page.getByTestId('metadata-column-key');
  await key.fill('needs review');
  await page.getByTestId('metadata-column-add').click();
  await expect(chooser.getByRole('alert')).toContainText('letters, digits');
  await key.fill('region');
  await page.getByTestId('metadata-column-add').click();
  await expect(page).toHaveURL(/cols=[^&]*metadata\.ticket%2Cmetadata\.region/);
  await expect(row(page, ids.third).locator('td[data-metadata-key="region"]')).toHaveText('us-east-1');
  await page.screenshot({ path: 'test-results/search-metadata-columns.png', fullPage: true });

  // A reload (or a shared link) shows the same columns and values.
  await page.reload();
  await hydrated(page);
  await expect(page.locator('thead')).toContainText('metadata.region');
  await expect(row(page, ids.first).locator('td[data-metadata-key="region"]')).toHaveText('eu-west-1');
  expect(errors, errors.join('\n')).toEqual([]);
});

test('a metadata facet opens to its values and a click adds the term', async ({ page }) => {
  const errors = watchErrors(page);
  await openWhenAllArrived(page, home, 4);
  const facets = page.getByTestId('metadata-facets');
  const facet = facets.locator('details.metadata-facet[data-facet="metadata.ticket"]');
  await expect(facet.locator('summary .facet-count')).toHaveText('3');
  await expect(facets.locator('details[data-facet="metadata.region"] summary .facet-count')).toHaveText('2');
  await facet.locator('summary').click();
  const value = facet.locator(`li[data-facet-value="${ticket(1)}"] a.facet-value`);
  await expect(value.locator('.facet-count')).toHaveText('2');
  await expect(facet.locator(`li[data-facet-value="${ticket(2)}"] .facet-count`)).toHaveText('1');
  await page.screenshot({ path: 'test-results/search-metadata-facet.png', fullPage: true });
  await value.click();
  await expect(page).toHaveURL(new RegExp(`q=metadata\\.ticket%3A%22${ticket(1)}%22`));
  await expect(page.locator('#q')).toHaveValue(`metadata.ticket:"${ticket(1)}"`);
  await expect(rows(page)).toHaveCount(2);
  await expect(row(page, ids.first)).toBeVisible();
  await expect(row(page, ids.second)).toBeVisible();
  await expect(page.getByTestId('facet-total')).toContainText('2 matching events');

  // Its "−" excludes the value instead.
  await page.goto(home);
  await hydrated(page);
  const again = page.locator('details.metadata-facet[data-facet="metadata.ticket"]');
  await again.locator('summary').click();
  await again.locator(`li[data-facet-value="${ticket(1)}"] a.facet-exclude`).click();
  await expect(page.locator('#q')).toHaveValue(`-metadata.ticket:"${ticket(1)}"`);
  await expect(rows(page)).toHaveCount(2);
  await expect(row(page, ids.third)).toBeVisible();
  await expect(row(page, ids.bare)).toBeVisible();
  expect(errors, errors.join('\n')).toEqual([]);
});

test('the query bar suggests recent metadata keys and an opened facet\'s values', async ({ page }) => {
  const errors = watchErrors(page);
  // A search whose own events carry no ticket: the key can only come from
  // the tenant's recent keys, not from this search's facets.
  const noTicket = `${home}&q=-metadata.ticket%3A*`;
  await openWhenAllArrived(page, noTicket, 1);
  await expect(page.getByTestId('metadata-facets')).toHaveCount(0);
  const q = page.locator('#q');
  const list = page.getByTestId('q-suggestions');
  // The keys are asked for once a page, when the bar is first used. The
  // server keeps a scope's recent keys for 60 s (docs/SEARCH.md), and the
  // pages loaded while these events were on their way (above, and in the
  // test before) may have asked before any was stored: load the page again
  // until its answer has them.
  await expect(async () => {
    await page.goto(noTicket);
    await hydrated(page);
    await q.focus();
    await q.fill('');
    await q.pressSequentially('metadata.ti');
    await expect(list.getByRole('option').first()).toContainText('metadata.ticket', { timeout: 2_000 });
  }).toPass({ timeout: KEYS_CACHED_MS });
  await q.press('Tab');
  await expect(q).toHaveValue('metadata.ticket:');

  // Values come from an opened metadata facet of the current search.
  await page.goto(home);
  await hydrated(page);
  const facet = page.locator('details.metadata-facet[data-facet="metadata.ticket"]');
  await facet.locator('summary').click();
  await expect(facet.locator(`li[data-facet-value="${ticket(1)}"]`)).toBeVisible();
  await q.fill('');
  await q.pressSequentially('metadata.ticket:SEC');
  await expect(list.getByRole('option').first()).toContainText(ticket(1));
  await expect(list.getByRole('option').first()).toContainText('2');
  await q.press('ArrowDown');
  await q.press('Enter');
  await expect(q).toHaveValue(`metadata.ticket:${ticket(1)} `);
  await q.press('Enter');
  await expect(rows(page)).toHaveCount(2);
  expect(errors, errors.join('\n')).toEqual([]);
});

test('count by a metadata key: its values, the events without it, links that find as many', async ({ page }) => {
  const errors = watchErrors(page);
  await openWhenAllArrived(page, home, 4);
  const select = page.getByTestId('count-by-field');
  // The keys the query bar knows are offered after the fixed fields, once
  // the picker is about to be used (pointer over it or focus), answered
  // from the server's 60 s cache: reload until the answer has these
  // events' keys.
  await expect(async () => {
    // Away from the picker, so that the hover below is an arrival.
    await page.mouse.move(0, 0);
    await page.goto(home);
    await hydrated(page);
    await expect(select.locator('optgroup[label="Metadata"]')).toHaveCount(0);
    await select.hover();
    await expect(select.locator('optgroup[label="Metadata"] option[value="metadata.ticket"]')).toHaveCount(1, { timeout: 2_000 });
  }).toPass({ timeout: KEYS_CACHED_MS });
  await select.selectOption('metadata.ticket');
  await expect(page).toHaveURL(/count_by=metadata\.ticket/);
  const table = page.getByTestId('count-by');
  await expect(table).toHaveAttribute('data-field', 'metadata.ticket');
  // Most first: ticket 1 on two events, ticket 2 on one, then the one
  // event without a ticket.
  const first = table.locator(`tr[data-value="${ticket(1)}"]`);
  await expect(table.locator('tbody tr').first()).toHaveAttribute('data-value', ticket(1));
  await expect(first.getByTestId('count-by-events')).toHaveText('2');
  await expect(table.locator(`tr[data-value="${ticket(2)}"]`).getByTestId('count-by-events')).toHaveText('1');
  const missing = table.locator('tr[data-missing-key="ticket"]');
  await expect(missing).toContainText('(no metadata.ticket)');
  await expect(missing.getByTestId('count-by-events')).toHaveText('1');
  await expect(table.locator('tbody tr')).toHaveCount(3);
  await page.screenshot({ path: 'test-results/search-count-by-metadata.png', fullPage: true });

  // A value's link adds it to the query and finds as many events as it
  // counted; the count stays chosen.
  await first.locator('a').click();
  await expect(page.locator('#q')).toHaveValue(`metadata.ticket:"${ticket(1)}"`);
  await expect(rows(page)).toHaveCount(2);
  await expect(page.getByTestId('histogram-total')).toHaveText('2');
  await expect(page).toHaveURL(/count_by=metadata\.ticket/);
  await expect(page.getByTestId('count-by').locator('tr[data-missing-key]')).toHaveCount(0);

  // The row without the key finds the event without a ticket.
  await page.goto(`${home}&count_by=metadata.ticket`);
  await hydrated(page);
  await page.getByTestId('count-by').locator('tr[data-missing-key="ticket"] a').click();
  await expect(page.locator('#q')).toHaveValue('-metadata.ticket:*');
  await expect(rows(page)).toHaveCount(1);
  await expect(row(page, ids.bare)).toBeVisible();

  // A key from a link that no recent event carries stays chosen: nothing
  // has it, so every event is in its "without" row.
  const absent = `absent-${run}`;
  await page.goto(`${home}&count_by=metadata.${absent}`);
  await hydrated(page);
  await expect(select).toHaveValue(`metadata.${absent}`);
  const none = page.getByTestId('count-by');
  await expect(none.locator('tr[data-value]')).toHaveCount(0);
  await expect(none.locator(`tr[data-missing-key="${absent}"]`).getByTestId('count-by-events')).toHaveText('4');
  expect(errors, errors.join('\n')).toEqual([]);
});
