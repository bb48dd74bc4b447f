// Signs in to the console under test with the access key scripts/test.sh
// granted (ATTEST_E2E_ACCESS_KEY) and saves the session cookie as the
// storage state every spec starts from. Without a key (a console run with
// console.require_login off) the state is empty.
const fs = require('fs');
const path = require('path');
const { request } = require('@playwright/test');

module.exports = async (config) => {
  const { baseURL, storageState } = config.projects[0].use;
  fs.mkdirSync(path.dirname(storageState), { recursive: true });
  const key = process.env.ATTEST_E2E_ACCESS_KEY;
  const context = await request.newContext({ baseURL });
  if (key) {
    const response = await context.post('/login', {
      form: { key, next: '/search' },
      maxRedirects: 0,
    });
    const location = response.headers()['location'] || '';
    if (response.status() !== 303 || location.startsWith('/login')) {
      throw new Error(`signing in to ${baseURL} failed: ${response.status()} → ${location}`);
    }
  }
  await context.storageState({ path: storageState });
  await context.dispose();
};
