// What the browser specs share: the browser-error watch, the wait for
// hydration, and posting one event over the ingest API. Not a spec itself
// (Playwright runs only *.spec.js).
const { expect } = require('@playwright/test');

// Fails the test on any browser error: hydration mismatches and panics in
// the WASM show up here first.
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

// Posts one event; it must be accepted (202). Returns its event id.
async function post(request, data) {
  const response = await request.post('/api/v1/events', { data });
  expect(response.status(), await response.text()).toBe(202);
  return (await response.json()).event_id;
}

module.exports = { watchErrors, hydrated, post };
