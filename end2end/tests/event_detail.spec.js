// One event's page in a real browser, reached from the Events list: its
// seal checked and shown as verified, the delay in words, the raw event as
// JSON copied to the clipboard, and the event with its proof downloaded as
// a bundle that `attest verify` accepts.
const fs = require('fs');
const { execFileSync } = require('child_process');
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated, post } = require('./support');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-detail-${run}`;

test('an event page: verified seal, delay in words, raw JSON, proof download', async ({ page, request, context }) => {
  const errors = watchErrors(page);
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  // Occurred 5 days and 14 hours before it was sent.
  const occurred = Date.now() - (5 * 24 + 14) * 3600 * 1000;
  const id = await post(request, {
    tenant_id: tenant,
    occurred_at: new Date(occurred).toISOString(),
    category: 'admin',
    action: 'user.delete',
    outcome: 'success',
    actor: { id: `alice-${run}`, type: 'user', ip: '203.0.113.20' },
    resource: { type: 'user', id: `bob-${run}` },
    source_service: 'e2e',
    metadata: { run, ticket: 'T-42' },
  });

  // The Events list links the row to its page; the writer flushes about
  // once a second, so reload until it is listed.
  const link = page.locator(`tr[data-event-id="${id}"] [data-testid="event-link"]`);
  await expect(async () => {
    await page.goto(`/?tenant=${tenant}&range=30d`);
    await expect(link).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 45_000 });
  await link.click();
  await expect(page).toHaveURL(new RegExp(`/events/${tenant}/${id}\\?at=${occurred}`));
  await expect(page.getByTestId('event-fields')).toContainText(/5 d 1[34] h later/);

  // The seal: sealed right after the batch is stored; a page opened in
  // between says "not sealed", so open it again until it is verified.
  const seal = page.getByTestId('seal');
  await expect(async () => {
    await page.reload();
    await expect(seal).toHaveAttribute('data-state', 'verified', { timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  await expect(seal).toContainText('Verified');
  await expect(page.getByTestId('seal-place')).toContainText('attest.e2e.admin partition');
  await expect(page.getByTestId('seal-explanation')).toContainText('signature holds under key');

  // The raw event, and the copy button once the page is interactive.
  const raw = JSON.parse(await page.getByTestId('raw-json').textContent());
  expect(raw.event_id).toBe(id);
  expect(raw.metadata.ticket).toBe('T-42');
  expect(raw.actor).toEqual({ id: `alice-${run}`, type: 'user', ip: '203.0.113.20' });
  await hydrated(page);
  await page.getByTestId('copy-raw').click();
  await expect(page.getByTestId('copy-status')).toHaveText('Copied.');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  expect(JSON.parse(copied)).toEqual(raw);
  await page.screenshot({ path: 'test-results/event-detail-verified.png', fullPage: true });

  // The event alone with its proof: a bundle `attest verify` accepts.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('seal-proof').click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/\.zip$/);
  const bundle = await download.path();
  const attest = process.env.ATTEST_BIN;
  expect(attest, 'scripts/test.sh exports ATTEST_BIN').toBeTruthy();
  const report = JSON.parse(execFileSync(attest, ['verify', bundle, '--json']).toString());
  expect(report.ok).toBe(true);
  expect(report.rows).toBe(1);
  expect(report.proven_rows).toBe(1);
  expect(fs.statSync(bundle).size).toBeGreaterThan(0);
  expect(errors).toEqual([]);
});
