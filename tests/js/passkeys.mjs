#!/usr/bin/env node
// Passkeys in a real browser: headless Chromium with a virtual authenticator (the DevTools
// WebAuthn domain) drives the gateway's own /passkeys page.
//
// Usage: node tests/js/passkeys.mjs <baseUrl> <email> <password> <sessionToken>
//   baseUrl must be an origin the gateway accepts for WebAuthn (http://localhost:PORT).
//   The account must have two-factor on, and the token be one of its sessions.
//
// Steps, each recorded in the report:
//   registered    - signed in with the token, "Add a passkey" (named "Laptop") succeeds;
//   secondFactor  - signed out, password log-in asks for a second factor, the passkey gives it;
//   passwordless  - signed out, "Sign in with a passkey" signs in as <email> with no address typed;
//   cloneRefused  - the credential copied into a second authenticator with its sign counter
//                   reset is refused (a cloned key), and the page says so.
// Prints ONE JSON line: {"registered","secondFactor","passwordless","cloneRefused",
//   "statuses":[...],"externalRequests":[...],"consoleErrors":[...],"error"}
// and exits 0 iff every step passed with no external request. Bounded by PASSKEYS_TIMEOUT_MS.
import { browserRun } from './browser.mjs';

const TIMEOUT_MS = Number(process.env.PASSKEYS_TIMEOUT_MS || 60_000);

const report = {
  registered: false,
  secondFactor: false,
  passwordless: false,
  cloneRefused: false,
  statuses: [],
  externalRequests: [],
  consoleErrors: [],
  error: null,
};

const { launch, finish } = browserRun(report, {
  timeoutMs: TIMEOUT_MS,
  passed: (r) => r.registered && r.secondFactor && r.passwordless && r.cloneRefused,
  profile: 'passkeys',
});

const AUTHENTICATOR = {
  protocol: 'ctap2',
  transport: 'internal',
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true,
  automaticPresenceSimulation: true,
};

async function main() {
  const [baseArg, email, password, token] = process.argv.slice(2);
  if (!baseArg || !email || !password || !token) {
    report.error = 'usage: node tests/js/passkeys.mjs <baseUrl> <email> <password> <sessionToken>';
    return finish(1);
  }
  const base = new URL(baseArg);
  const { context, page } = await launch(base);

  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  let { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: AUTHENTICATOR });

  const status = page.locator('#status');
  // Waits for the status line to match, and records it.
  const expectStatus = async (pattern) => {
    await page.waitForFunction((source) => new RegExp(source).test(document.getElementById('status').textContent), pattern.source, {
      timeout: 15_000,
    });
    report.statuses.push(await status.textContent());
  };
  const signOut = async () => {
    await page.click('#sign-out');
    await expectStatus(/^Signed out\./);
  };

  // 1. Signed in with the session the test made, add a passkey.
  await page.goto(new URL('/passkeys', base).href);
  await page.evaluate((t) => sessionStorage.setItem('concierge.token', t), token);
  await page.reload();
  await expectStatus(/^Signed in as /);
  await page.fill('#passkey-name', 'Laptop');
  await page.click('#add-passkey');
  await expectStatus(/^(Passkey added\.|Refused)/);
  report.registered = (await status.textContent()) === 'Passkey added.' && (await page.textContent('#passkey-list')).includes('Laptop');

  // 2. Password, then the passkey as the second factor.
  await signOut();
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('#password-signin');
  await expectStatus(/^Confirm with a passkey/);
  await page.click('#passkey-second-factor');
  await expectStatus(/^(Signed in as|Refused)/);
  report.secondFactor = (await status.textContent()) === `Signed in as ${email}.`;

  // 3. Passwordless: nothing typed, the authenticator names the account.
  await signOut();
  await page.fill('#email', '');
  await page.fill('#password', '');
  await page.click('#passkey-signin');
  await expectStatus(/^(Signed in as|Refused)/);
  report.passwordless = (await status.textContent()) === `Signed in as ${email}.`;

  // 4. A clone: the same private key in a new authenticator, its counter back at zero.
  await signOut();
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  if (credentials.length !== 1 || credentials[0].signCount < 1) {
    throw new Error(`expected one used credential, got ${JSON.stringify(credentials.map((c) => c.signCount))}`);
  }
  await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
  ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: AUTHENTICATOR }));
  await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...credentials[0], signCount: 0 } });
  await page.click('#passkey-signin');
  await expectStatus(/^(Signed in as|Refused)/);
  report.cloneRefused = (await status.textContent()).startsWith('Refused');
}

main()
  .then(() => finish())
  .catch((e) => {
    report.error = String(e && e.stack ? e.stack : e);
    finish(1);
  });
