// Headless Chromium for the browser checks (graphiql.mjs, passkeys.mjs): a fresh profile,
// every request (WebSockets too) to a host other than the gateway's blocked and recorded in
// report.externalRequests, console errors recorded in report.consoleErrors, a watchdog, and
// one JSON report line on stdout when it ends.
//
// const run = browserRun(report, { timeoutMs, passed: (report) => bool, profile: 'name' });
// const { context, page } = await run.launch(baseUrl, { timeout });
// ... then run.finish() (exit 0 iff passed(report)) or run.finish(1).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';

export function browserRun(report, { timeoutMs, passed, profile }) {
  let context = null;
  let userDataDir = null;
  let finished = false;

  async function finish(code) {
    if (finished) return;
    finished = true;
    if (code === undefined) code = passed(report) && report.externalRequests.length === 0 ? 0 : 1;
    // Closing the browser is bounded too; the profile dir is removed either way.
    const closing = context ? context.close().catch(() => {}) : Promise.resolve();
    await Promise.race([closing, new Promise((r) => setTimeout(r, 5_000).unref())]);
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(code));
  }

  setTimeout(() => {
    report.error = report.error || `timed out after ${timeoutMs} ms`;
    finish(1);
  }, timeoutMs).unref();

  async function launch(base, { timeout } = {}) {
    const isExternal = (raw) => {
      let url;
      try {
        url = new URL(raw);
      } catch {
        return false;
      }
      return /^(https?|wss?|ftp):$/.test(url.protocol) && url.host !== base.host;
    };
    userDataDir = mkdtempSync(join(tmpdir(), `concierge-${profile}-`));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: EXECUTABLE,
      headless: true,
      timeout,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
      serviceWorkers: 'block',
    });
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (isExternal(url)) {
        report.externalRequests.push(url);
        return route.abort('blockedbyclient');
      }
      return route.continue();
    });
    // WebSockets are not seen by route(): block external ones separately.
    await context.routeWebSocket(
      (url) => isExternal(url.href),
      (ws) => {
        report.externalRequests.push(ws.url());
        ws.close();
      },
    );
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (msg) => {
      if (msg.type() === 'error') {
        const loc = msg.location();
        report.consoleErrors.push(loc && loc.url ? `${msg.text()} (${loc.url}:${loc.lineNumber})` : msg.text());
      }
    });
    page.on('pageerror', (err) => report.consoleErrors.push(`uncaught: ${err.message}`));
    return { context, page };
  }

  return { launch, finish };
}
