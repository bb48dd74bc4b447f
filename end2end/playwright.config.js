// Runs against a console that is already up (scripts/test.sh starts it) in
// Debian's Chromium: Playwright's own browser download is not reachable here.
const { defineConfig } = require('@playwright/test');

module.exports = defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  timeout: 90_000,
  expect: { timeout: 30_000 },
  retries: 0,
  workers: 1,
  reporter: [['list']],
  // Signs in once with ATTEST_E2E_ACCESS_KEY; every spec starts signed in
  // unless it clears the storage state (login.spec.js does).
  globalSetup: require.resolve('./global-setup.js'),
  use: {
    baseURL: process.env.ATTEST_CONSOLE_URL || 'http://127.0.0.1:3030',
    storageState: require('path').join(__dirname, '.auth', 'state.json'),
    screenshot: 'only-on-failure',
    trace: 'off',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
