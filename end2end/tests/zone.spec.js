// The time zone lives in the URL on Search and the Dashboard: a link with
// tz=Europe/Berlin opens in Berlin time (heatmap, changes, results,
// histogram), the switch goes back to UTC and the URL says so, and from UTC
// the switch puts the browser's own zone into the URL.
const { test, expect } = require('@playwright/test');
const { watchErrors, hydrated, post } = require('./support');

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const tenant = `e2e-zone-${run}`;
// A whole second, a minute ago: the results show it to the millisecond.
const at = Math.floor((Date.now() - 60_000) / 1000) * 1000;

/// `YYYY-MM-DD HH:MM:SS.000` (and the zone's abbreviation) as the browser's
/// own tz database has it, to compare with what the server's put on the page.
function wallClock(ms, timeZone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    })
      .formatToParts(new Date(ms))
      .map((p) => [p.type, p.value]),
  );
  return {
    text: `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}.000`,
    // en-GB names Berlin's zones "CET" / "CEST".
    abbr: parts.timeZoneName,
  };
}

test.describe('time zone in the URL', () => {
  test.use({ timezoneId: 'Asia/Tokyo' });

  test('a Berlin link opens in Berlin time; the switch goes back to UTC and changes the URL', async ({ page, request }) => {
    const errors = watchErrors(page);
    for (const [category, action] of [['permission_change', 'role.grant'], ['authentication', 'user.login']]) {
      await post(request, {
        tenant_id: tenant,
        occurred_at: new Date(at).toISOString(),
        category,
        action,
        outcome: 'success',
        actor: { id: `zoe-${run}`, type: 'user' },
        source_service: 'e2e',
      });
    }
    const berlin = wallClock(at, 'Europe/Berlin');
    const utc = wallClock(at, 'UTC');

    // The dashboard: heatmap title, changes list and the switch.
    const dashboard = `/dashboard?tenant=${encodeURIComponent(tenant)}&range=24h&tz=Europe%2FBerlin`;
    await expect(async () => {
      await page.goto(dashboard);
      await expect(page.locator('[data-testid="panel-events"] [data-testid="panel-total"]')).toHaveText('2', { timeout: 2_000 });
    }).toPass({ timeout: 60_000 });
    await hydrated(page);
    const heat = page.locator('[data-testid="panel-heatmap"]');
    await expect(heat.locator('svg[role="img"] title').first()).toContainText('(Europe/Berlin)');
    await expect(heat.locator('.panel-total')).toContainText('Europe/Berlin');
    const changes = page.locator('[data-testid="panel-changes"]');
    await expect(changes.locator('thead')).toContainText('When (Europe/Berlin)');
    await expect(changes.locator('tbody th').first()).toHaveText(`${berlin.text.slice(0, 16)} ${berlin.abbr}`);
    const toggle = page.getByTestId('zone-toggle');
    await expect(toggle).toHaveText('Times in Europe/Berlin (switch to UTC)');

    // A bar's link opens Search in the same zone.
    const bar = page.locator('[data-testid="panel-events"] a.bar-link').first();
    const barHref = await bar.getAttribute('href');
    expect(new URL(barHref, page.url()).searchParams.get('tz')).toBe('Europe/Berlin');

    // Back to UTC: the URL loses tz and the heatmap is in UTC again.
    await toggle.click();
    await expect(page).not.toHaveURL(/tz=/);
    await expect(heat.locator('.panel-total')).toContainText('UTC');
    await expect(changes.locator('tbody th').first()).toHaveText(utc.text.slice(0, 16));

    // Search opened in Berlin time: results, summary and switch.
    await page.goto(`/search?tenant=${encodeURIComponent(tenant)}&range=24h&tz=Europe%2FBerlin`);
    await hydrated(page);
    const results = page.getByTestId('search-results');
    await expect(results.locator('thead')).toContainText('Time (Europe/Berlin)');
    await expect(results.locator('tbody tr').first().locator('td').first()).toHaveText(`${berlin.text} ${berlin.abbr}`);
    await expect(page.getByTestId('search-summary')).toContainText('Europe/Berlin');
    await expect(page.locator('[data-testid="histogram"] svg[role="img"] desc').first()).toBeAttached();
    await page.getByTestId('zone-toggle').click();
    await expect(page).not.toHaveURL(/tz=/);
    await expect(results.locator('tbody tr').first().locator('td').first()).toHaveText(utc.text);
    await expect(page.getByTestId('search-summary')).toContainText('UTC');

    // From UTC the switch offers the browser's zone and puts its name in
    // the URL, so the link shares it.
    await expect(page.getByTestId('zone-toggle')).toHaveText('Times in UTC (switch to Asia/Tokyo)');
    await page.getByTestId('zone-toggle').click();
    await expect(page).toHaveURL(/tz=Asia%2FTokyo/);
    const tokyo = wallClock(at, 'Asia/Tokyo');
    await expect(results.locator('tbody tr').first().locator('td').first()).toContainText(tokyo.text);
    await page.screenshot({ path: 'test-results/search-zone-tokyo.png', fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
  });
});
