// Sign-in in a real browser: the console sends a stranger to the sign-in
// page, refuses a wrong key, and shows a viewer scoped to one tenant that
// tenant only, whatever the URL asks for; signing out ends the session.
const { test, expect } = require('@playwright/test');
const { hydrated, post } = require('./support');

// Starts signed out, whatever the other specs use.
test.use({ storageState: { cookies: [], origins: [] } });

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const scoped = 'e2e-scoped'; // the tenant of ATTEST_E2E_SCOPED_KEY (scripts/test.sh)
const other = `e2e-other-${run}`;

const postEvent = (request, tenant, action) => post(request, {
  tenant_id: tenant,
  occurred_at: new Date().toISOString(),
  category: 'authentication',
  action,
  outcome: 'success',
  actor: { id: `carol-${run}`, type: 'user' },
  source_service: 'e2e',
});

// Waits until an all-tenant viewer's search finds `eventId` in `tenant`:
// without it, "the scoped viewer does not see it" could pass only because
// the event was not stored yet.
async function visibleToAll(playwright, tenant, eventId) {
  const ctx = await playwright.request.newContext({ baseURL: process.env.ATTEST_CONSOLE_URL });
  try {
    const login = await ctx.post('/login', {
      form: { key: process.env.ATTEST_E2E_ACCESS_KEY, next: '/search' },
      maxRedirects: 0,
    });
    expect(login.status()).toBe(303);
    for (let attempt = 0; attempt < 60; attempt += 1) {
      const answer = await ctx.post('/api/search/page', {
        form: { tenant, q: `action:login.${run}`, range: '1h' },
      });
      if (answer.ok() && (await answer.text()).includes(eventId)) return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    throw new Error(`event ${eventId} of ${tenant} never became visible to an all-tenant viewer`);
  } finally {
    await ctx.dispose();
  }
}

test('sign in, see one tenant only, sign out', async ({ page, request, playwright }) => {
  // Not a skip: a run without the keys has tested nothing and must fail.
  expect(process.env.ATTEST_E2E_SCOPED_KEY, 'set by scripts/test.sh').toBeTruthy();
  expect(process.env.ATTEST_E2E_ACCESS_KEY, 'set by scripts/test.sh').toBeTruthy();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('console', (msg) => {
    // A refused request is the point of one step below; anything else fails.
    if (msg.type() === 'error' && !/status of 40[13]/.test(msg.text())) errors.push(msg.text());
  });
  const mine = await postEvent(request, scoped, `login.${run}`);
  const theirs = await postEvent(request, other, `login.${run}`);
  await visibleToAll(playwright, other, theirs);

  // A stranger lands on the sign-in page, with the way back kept.
  await page.goto(`/search?q=action:login.${run}&range=1h`);
  await expect(page).toHaveURL(/\/login\?next=%2Fsearch/);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await page.screenshot({ path: 'test-results/login-page.png', fullPage: true });

  // A wrong key is refused and signs no one in.
  await page.getByLabel('Access key').fill(`atc_${'0'.repeat(16)}_${'0'.repeat(64)}`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('login-error')).toContainText('not valid');
  expect((await page.context().cookies()).filter((c) => c.name === 'attest_session')).toHaveLength(0);

  // The scoped key signs in and returns to the search that was asked for.
  await page.getByLabel('Access key').fill(process.env.ATTEST_E2E_SCOPED_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/search\?q=action/);
  const cookie = (await page.context().cookies()).find((c) => c.name === 'attest_session');
  expect(cookie && cookie.httpOnly).toBe(true);
  await hydrated(page);
  await expect(page.getByTestId('viewer')).toContainText('e2e-scoped-analyst');

  // Only its tenant is offered, and only its events are found.
  const options = await page.locator('#search-tenant option').allTextContents();
  expect(options).toEqual(['Your tenant', scoped]);
  for (let attempt = 0; attempt < 30; attempt += 1) {
    if (await page.locator(`tr[data-event-id="${mine}"]`).count()) break;
    await page.waitForTimeout(1000);
    await page.reload();
    await hydrated(page);
  }
  await expect(page.locator(`tr[data-event-id="${mine}"]`)).toBeVisible();
  await expect(page.locator(`tr[data-event-id="${theirs}"]`)).toHaveCount(0);

  // Asking for another tenant by URL is refused by the server.
  await page.goto(`/search?q=action:login.${run}&range=1h&tenant=${other}`);
  await expect(page.getByTestId('search-error')).toContainText('choose one of: e2e-scoped');
  await expect(page.locator(`tr[data-event-id="${theirs}"]`)).toHaveCount(0);
  await page.goto(`/events/${other}/${theirs}`);
  await expect(page.locator('body')).not.toContainText(`carol-${run}`);
  await page.screenshot({ path: 'test-results/login-scoped.png', fullPage: true });

  // Signing out ends the session: the console sends back to sign-in.
  await page.goto('/search');
  await hydrated(page);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByTestId('signed-out')).toBeVisible();
  await page.goto('/search');
  await expect(page).toHaveURL(/\/login\?next=%2Fsearch/);
  expect(errors).toEqual([]);
});
