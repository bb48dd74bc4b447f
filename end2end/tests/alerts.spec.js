// The alerts page in a real browser: an admin (ATTEST_E2E_ADMIN_KEY,
// granted --role admin by scripts/test.sh) reaches it from the top bar,
// sees what fires, the rules and the deliveries, and changes a threshold
// that stays changed after a reload; an analyst (the storage state's
// ATTEST_E2E_ACCESS_KEY) gets the 403 page, no link, and 403 from both of
// the page's server functions.
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated } = require('./support');

test('an analyst gets the 403 page, no link, and 403 from the server functions', async ({ page }) => {
  const response = await page.goto('/alerts');
  expect(response.status()).toBe(403);
  await expect(page.getByTestId('forbidden')).toContainText('for admins only');
  await expect(page.getByTestId('rules-form')).toHaveCount(0);
  await page.screenshot({ path: 'test-results/alerts-analyst-403.png', fullPage: true });

  const read = await page.request.post('/api/alerts/view', { form: {} });
  expect(read.status()).toBe(403);
  const save = await page.request.post('/api/alerts/rules', {
    form: {
      writer_lag_enabled: 'on', writer_lag_threshold_s: '1', writer_lag_window_s: '1',
      parts_near_limit_percent: '80', dead_letters_growing_window_s: '600', spool_not_empty_after_s: '300',
    },
  });
  expect(save.status()).toBe(403);

  await page.goto('/search');
  await hydrated(page);
  await expect(page.locator('nav a[href="/alerts"]')).toHaveCount(0);
});

test.describe('as an admin', () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test('sees the alerts and changes a threshold', async ({ page }) => {
    // Not a skip: a run without the key has tested nothing and must fail.
    expect(process.env.ATTEST_E2E_ADMIN_KEY, 'set by scripts/test.sh').toBeTruthy();
    const errors = watchErrors(page);
    const login = await page.request.post('/login', {
      form: { key: process.env.ATTEST_E2E_ADMIN_KEY, next: '/search' },
      maxRedirects: 0,
    });
    expect(login.status()).toBe(303);

    await page.goto('/search');
    await hydrated(page);
    await page.locator('nav a[href="/alerts"]').click();
    await expect(page).toHaveURL(/\/alerts$/);
    await expect(page.getByRole('heading', { name: 'Alerts', level: 1 })).toBeVisible();
    await expect(page.getByRole('heading', { name: 'Firing now' })).toBeVisible();
    await expect(page.getByRole('heading', { name: 'Webhook deliveries' })).toBeVisible();
    const form = page.getByTestId('rules-form');
    await expect(form.locator('fieldset.rule')).toHaveCount(8);
    // The integrity check's rule is among them, on by default.
    await expect(form.locator('#integrity_problems_enabled')).toBeChecked();

    // A new threshold, unlike whatever a previous run left.
    const threshold = String(100 + Math.floor(Math.random() * 800));
    await form.locator('#writer_lag_threshold_s').fill(threshold);
    await form.getByRole('button', { name: 'Save thresholds' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Saved.' })).toBeVisible();
    await expect(page.getByText(/Last changed by e2e-admin/)).toBeVisible();

    await page.reload();
    await hydrated(page);
    await expect(page.locator('#writer_lag_threshold_s')).toHaveValue(threshold);
    await page.screenshot({ path: 'test-results/alerts-admin.png', fullPage: true });

    // Out of range: refused with the field named, nothing saved.
    await page.locator('#writer_lag_window_s').fill('999999999');
    await page.getByRole('button', { name: 'Save thresholds' }).click();
    await expect(page.getByRole('alert')).toContainText('writer_lag.window_s');
    await page.reload();
    await expect(page.locator('#writer_lag_window_s')).not.toHaveValue('999999999');
    // A 400 for the refused save is the only console error expected.
    expect(errors.filter((e) => !e.includes('400'))).toEqual([]);
  });
});
