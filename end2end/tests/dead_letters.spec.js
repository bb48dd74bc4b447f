// The dead-letter inbox in a real browser. A poison record is produced
// straight onto the e2e instance's admin topic (an Avro event from 1970,
// which decodes but breaks the contract, with a secret in its metadata):
// the writer sets it aside. An admin (ATTEST_E2E_ADMIN_KEY) sees it
// waiting, masked, and discards it with a written reason; an analyst (the
// storage state's ATTEST_E2E_ACCESS_KEY) gets the 403 page and no link.
const { execFileSync } = require('child_process');
const path = require('path');
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated } = require('./support');

const SECRET = 'hunter2-never-on-the-page';

// Encodes the event with the committed contract (fastavro, Confluent
// framing with the schema id ingest writes with) and produces it with acks=all,
// as another service writing straight onto the topic would.
function producePoison(eventId) {
  const code = `
import io, json, struct, sys
import fastavro
from confluent_kafka import Producer
schemas, brokers, topic, event_id, secret = sys.argv[1:6]
manifest = json.load(open(schemas + "/registry.json"))
versions = manifest["subjects"]["dev.attest.AuditEvent"]
latest = max(v["version"] for v in versions)
current = next(v for v in versions if v["version"] == manifest.get("ingest_version", latest))
schema = fastavro.parse_schema(json.load(open(schemas + "/" + current["file"])))
record = {
    "event_id": event_id, "tenant_id": "e2e-dlq", "occurred_at": 5, "received_at": 5,
    "category": "admin", "action": "settings.change", "outcome": "success",
    "actor": {"id": "e2e-admin", "type": "user", "ip": "198.51.100.7", "user_agent": None},
    "resource": None, "source_service": "e2e", "request_id": None,
    "metadata": {"password": secret, "ticket": "E2E-1"},
}
body = io.BytesIO()
fastavro.schemaless_writer(body, schema, record)
payload = struct.pack(">bI", 0, current["id"]) + body.getvalue()
producer = Producer({"bootstrap.servers": brokers, "acks": "all", "enable.idempotence": True})
errors = []
producer.produce(topic, payload, key="e2e-dlq", on_delivery=lambda err, msg: err and errors.append(err))
if producer.flush(30) != 0 or errors:
    sys.exit("not acknowledged: %s" % errors)
`;
  const prefix = process.env.ATTEST_KAFKA__TOPIC_PREFIX || 'attest.e2e';
  const brokers = process.env.ATTEST_KAFKA__BROKERS || '127.0.0.1:19092';
  execFileSync(
    'python3',
    ['-c', code, path.join(__dirname, '..', '..', 'schemas'), brokers, `${prefix}.admin`, eventId, SECRET],
    { stdio: 'inherit', timeout: 60_000 },
  );
}

test('an analyst gets the 403 page, no link and no letters', async ({ page }) => {
  const response = await page.goto('/dead-letters');
  expect(response.status()).toBe(403);
  await expect(page.getByTestId('forbidden')).toContainText('for admins only');
  await expect(page.locator('[data-testid="dead-letter"]')).toHaveCount(0);
  const call = await page.request.post('/api/dead_letters/page', { form: {} });
  expect(call.status()).toBe(403);
  await page.screenshot({ path: 'test-results/dead-letters-analyst-403.png', fullPage: true });
  await page.goto('/search');
  await hydrated(page);
  await expect(page.locator('nav a[href="/dead-letters"]')).toHaveCount(0);
});

test.describe('as an admin', () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test('sees a waiting dead letter, masked, and discards it with a reason', async ({ page }) => {
    // Not a skip: a run without the key has tested nothing and must fail.
    expect(process.env.ATTEST_E2E_ADMIN_KEY, 'set by scripts/test.sh').toBeTruthy();
    const errors = watchErrors(page);
    const login = await page.request.post('/login', {
      form: { key: process.env.ATTEST_E2E_ADMIN_KEY, next: '/search' },
      maxRedirects: 0,
    });
    expect(login.status()).toBe(303);

    const eventId = `e2e-dlq-${Date.now()}`;
    producePoison(eventId);

    // Reached from the top bar; the newest letters are on the last page.
    await page.goto('/search');
    await hydrated(page);
    await page.locator('nav a[href="/dead-letters"]').click();
    await expect(page).toHaveURL(/\/dead-letters$/);
    const last = '/dead-letters?reason=invalid_event&page=100000';
    const row = page.locator('[data-testid="dead-letter"]', { hasText: eventId });
    await expect
      .poll(async () => {
        await page.goto(last);
        return row.count();
      }, { timeout: 60_000, intervals: [500, 1000, 2000] })
      .toBe(1);
    await hydrated(page);

    await expect(row).toHaveAttribute('data-reason', 'invalid_event');
    await expect(row).toHaveAttribute('data-ready', 'false');
    await expect(row.getByTestId('recheck')).toContainText('occurred_at');
    await expect(row.getByTestId('preview')).toContainText('metadata.password');
    await expect(row.getByTestId('masked').first()).toHaveText('•••');
    const prefix = process.env.ATTEST_KAFKA__TOPIC_PREFIX || 'attest.e2e';
    await expect(row).toContainText(`${prefix}.admin/`);
    await expect(page.getByTestId('waiting')).not.toHaveText('0');
    const html = await page.content();
    expect(html).not.toContain(SECRET);
    expect(html).not.toContain('198.51.100.7');
    await page.screenshot({ path: 'test-results/dead-letters-waiting.png', fullPage: true });

    // The pipeline page counts it too (live, over its event stream), with
    // the way to the inbox.
    await page.goto('/pipeline');
    await hydrated(page);
    await expect(page.getByTestId('dead-letters-waiting')).toHaveText(/^\d+ dead letters? waiting$/, {
      timeout: 30_000,
    });
    await expect(page.getByTestId('dead-letters-inbox')).toHaveAttribute('href', '/dead-letters');
    await page.screenshot({ path: 'test-results/pipeline-dead-letter-waiting.png', fullPage: true });
    await page.goto(last);
    await hydrated(page);
    await expect(row).toHaveCount(1);

    // A discard needs a reason: the browser will not send an empty one.
    await row.locator('input[type="checkbox"]').check();
    const discard = page.getByTestId('discard-selected');
    await expect(discard).toBeEnabled();
    await discard.click();
    await expect(page.getByTestId('action-result')).toHaveCount(0);
    await page.locator('#discard-reason').fill('e2e: a record from 1970, sent by a test');
    await discard.click();
    await expect(page.getByTestId('action-result')).toHaveText('Discarded 1 letter(s)');
    await expect(row).toHaveCount(0);

    // Gone for good: not there after a reload either.
    await page.goto(last);
    await hydrated(page);
    await expect(page.locator('[data-testid="dead-letter"]', { hasText: eventId })).toHaveCount(0);
    expect(errors).toEqual([]);
  });
});
