// The Redactions page in a real browser (README "Redaction"): one admin
// (ATTEST_E2E_ADMIN_KEY) requests the erasure of an event's actor IP
// through the admin API; the page lists it as pending and tells its
// requester that another admin approves it (no button); a second admin
// approves it there, the page says it executed and nothing waits any more;
// the event's page shows the erased value and a seal verdict "redacted".
//
// The second admin's key: ATTEST_E2E_SECOND_ADMIN_KEY, or one granted here
// with the instance's own binary (`attest access grant --role admin`,
// configured by the same ATTEST_* environment as the e2e console).
const path = require('path');
const os = require('os');
const { execFileSync } = require('child_process');
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated, post } = require('./support');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-redact-${run}`;

function secondAdminKey() {
  if (process.env.ATTEST_E2E_SECOND_ADMIN_KEY) return process.env.ATTEST_E2E_SECOND_ADMIN_KEY;
  const target = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'attest', 'target');
  const bin = path.join(target, process.env.ATTEST_PROFILE || 'debug', 'attest');
  return execFileSync(bin, ['access', 'grant', '--by', 'redactions.spec.js',
    '--name', `e2e-second-admin-${run}`, '--all-tenants', '--role', 'admin'],
  // From the repository's root, as scripts/console.sh runs the console
  // (its configuration names paths relative to it).
  { cwd: path.join(__dirname, '..', '..'), timeout: 60_000 })
    .toString()
    .trim();
}

async function signIn(request, key) {
  const login = await request.post('/login', { form: { key, next: '/redactions' }, maxRedirects: 0 });
  expect(login.status()).toBe(303);
  expect(login.headers()['location']).toBe('/redactions');
}

test('a request waits for a second admin, who approves it on the page; the event shows it redacted', async ({ browser, request }) => {
  // Not a skip: a run without the key has tested nothing and must fail.
  expect(process.env.ATTEST_E2E_ADMIN_KEY, 'set by scripts/test.sh').toBeTruthy();
  const id = await post(request, {
    tenant_id: tenant,
    occurred_at: new Date().toISOString(),
    category: 'authentication',
    action: 'user.login',
    outcome: 'failure',
    actor: { id: `subject-${run}`, type: 'user', ip: '198.51.100.77' },
    source_service: 'e2e',
    metadata: { email: `subject-${run}@example.com` },
  });

  // The requester: the first admin, in a context of its own.
  const requester = await browser.newContext({ storageState: { cookies: [], origins: [] } });
  await signIn(requester.request, process.env.ATTEST_E2E_ADMIN_KEY);
  // A request is refused (409) until the event is stored, sealed and its
  // offset committed by the writers: a few seconds after it was sent.
  let made;
  await expect(async () => {
    const response = await requester.request.post('/api/v1/redactions', {
      data: { tenant_id: tenant, event_ids: [id], fields: ['actor.ip', 'metadata.email'], reason: `e2e erasure ${run}` },
    });
    made = await response.json();
    expect(response.status(), JSON.stringify(made)).toBe(201);
  }).toPass({ timeout: 60_000, intervals: [1_000] });
  expect(made.state).toBe('pending');
  const requestId = made.request_id;

  // The requester sees it pending, and why there is nothing to press.
  const page = await requester.newPage();
  const errors = watchErrors(page);
  await page.goto('/redactions');
  await hydrated(page);
  const mine = page.locator(`tr[data-request="${requestId}"]`);
  await expect(mine).toContainText(tenant);
  await expect(mine).toContainText('actor.ip, metadata.email');
  await expect(mine).toContainText('Your request: another admin approves it');
  await expect(mine.getByRole('button', { name: 'Approve and execute' })).toHaveCount(0);
  // Nor through the API.
  const own = await requester.request.post(`/api/v1/redactions/${requestId}/approve`);
  expect(own.status()).toBe(409);
  expect((await own.json()).message).toContain('second admin');
  await page.screenshot({ path: 'test-results/redactions-requester.png', fullPage: true });

  // The second admin approves it on the page, which executes it.
  const approver = await browser.newContext({ storageState: { cookies: [], origins: [] } });
  await signIn(approver.request, secondAdminKey());
  const second = await approver.newPage();
  const secondErrors = watchErrors(second);
  await second.goto('/redactions');
  await hydrated(second);
  const theirs = second.locator(`tr[data-request="${requestId}"]`);
  await theirs.getByRole('button', { name: 'Approve and execute' }).click();
  await expect(second.getByTestId('redaction-done')).toContainText(`Request ${requestId} executed: 1 rows redacted`);
  await expect(theirs).toHaveCount(0);
  const state = await approver.request.get(`/api/v1/redactions/${requestId}`);
  expect((await state.json()).state).toBe('executed');
  await second.screenshot({ path: 'test-results/redactions-approved.png', fullPage: true });

  // The event's page: the value erased, the seal's verdict "redacted".
  await second.goto(`/events/${tenant}/${id}`);
  await expect(second.getByTestId('seal')).toHaveAttribute('data-state', 'redacted');
  const raw = JSON.parse(await second.getByTestId('raw-json').textContent());
  expect(raw.actor.ip).toBe('[redacted]');
  expect(raw.metadata.email).toBe('[redacted]');
  expect(raw.actor.id).toBe(`subject-${run}`);
  await second.screenshot({ path: 'test-results/redactions-event.png', fullPage: true });

  expect(errors).toEqual([]);
  expect(secondErrors).toEqual([]);
  await requester.close();
  await approver.close();
});
