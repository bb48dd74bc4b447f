// Live tail (issue 17) in a real browser: turned on from the toolbar, it
// shows an event posted after it was turned on, newest on top; paused, it
// counts new events without showing them until resumed.
const { test, expect } = require('@playwright/test');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-tail-${run}`;

async function postEvent(request, fields) {
  const response = await request.post('/api/v1/events', {
    data: {
      tenant_id: tenant,
      occurred_at: new Date().toISOString(),
      category: 'authentication',
      action: 'user.login',
      outcome: 'success',
      actor: { id: `alice-${run}`, type: 'user', ip: '10.0.0.7' },
      source_service: 'e2e',
      ...fields,
    },
  });
  expect(response.status(), await response.text()).toBe(202);
  return (await response.json()).event_id;
}

function watchErrors(page) {
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  return errors;
}

async function hydrated(page) {
  await page.locator('body[data-hydrated="true"]').waitFor({ timeout: 30_000 });
}

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
