#!/usr/bin/env node
// Proves that GraphiQL is served entirely by the gateway itself and works.
//
// Usage: node tests/js/graphiql.mjs <baseUrl>      (e.g. http://127.0.0.1:PORT)
//
// Launches headless Chromium (env CHROMIUM, default /usr/bin/chromium) through
// playwright-core with a fresh profile, opens <baseUrl>/graphql as a normal
// navigation (so Accept: text/html), waits for GraphiQL to render, replaces the
// query with `{ __typename }`, runs it with the execute button and waits for
// `"__typename": "Query"` in the result pane. Every request the page makes is
// recorded; a request to any host other than the baseUrl's is blocked and
// reported.
//
// Prints ONE JSON line to stdout:
//   {"rendered":bool,"queryResult":bool,"externalRequests":[urls],
//    "consoleErrors":[...],"requests":["GET http://...",...],"error":string|null}
// and exits 0 iff rendered && queryResult && no external requests, else 1.
// Everything is bounded by GRAPHIQL_TIMEOUT_MS (default 30 s), so it never hangs.
// Set GRAPHIQL_SCREENSHOT=/path/shot.png to save a screenshot of the final page.
import { browserRun } from './browser.mjs';

const TIMEOUT_MS = Number(process.env.GRAPHIQL_TIMEOUT_MS || 30_000);
const QUERY = '{ __typename }';
const EXPECTED = '"__typename": "Query"';

const report = {
  rendered: false,
  queryResult: false,
  externalRequests: [],
  consoleErrors: [],
  requests: [],
  error: null,
};

const { launch, finish } = browserRun(report, {
  timeoutMs: TIMEOUT_MS,
  passed: (r) => r.rendered && r.queryResult,
  profile: 'graphiql',
});

async function main() {
  let base;
  try {
    base = new URL(process.argv[2]);
    if (!/^https?:$/.test(base.protocol)) throw new Error('not http(s)');
  } catch {
    report.error = `usage: node tests/js/graphiql.mjs <baseUrl>  (got ${JSON.stringify(process.argv[2] ?? null)})`;
    return finish(1);
  }
  const pageUrl = new URL('/graphql', base).href;
  // Leave the watchdog a margin to close the browser and print the report.
  const deadline = Date.now() + TIMEOUT_MS - 3_000;
  const remaining = () => Math.max(1_000, deadline - Date.now());

  const { context, page } = await launch(base, { timeout: remaining() });
  context.setDefaultTimeout(remaining());
  context.on('request', (req) => report.requests.push(`${req.method()} ${req.url()}`));
  page.on('websocket', (ws) => report.requests.push(`WEBSOCKET ${ws.url()}`));

  const response = await page.goto(pageUrl, { waitUntil: 'domcontentloaded', timeout: remaining() });
  if (!response || !response.ok()) {
    report.error = `GET ${pageUrl} answered ${response ? response.status() : 'nothing'}`;
    return finish(1);
  }

  // GraphiQL has rendered once its container and query editor exist.
  await page.locator('.graphiql-container').first().waitFor({ state: 'visible', timeout: remaining() });
  const editor = page.locator('.graphiql-query-editor .CodeMirror').first();
  await editor.waitFor({ state: 'visible', timeout: remaining() });
  report.rendered = true;

  // Type the query the way a person would: focus the editor, select all, type.
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Backspace');
  await page.keyboard.insertText(QUERY);
  const typed = await page.evaluate(() => {
    const cm = document.querySelector('.graphiql-query-editor .CodeMirror');
    return cm && cm.CodeMirror ? cm.CodeMirror.getValue() : null;
  });
  if (typed !== null && typed.trim() !== QUERY) {
    // Editor extensions (auto-closing brackets...) changed what was typed.
    await page.evaluate((q) => {
      document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q);
    }, QUERY);
  }

  // GraphiQL works out the operation to run from the editor content with a
  // short debounce; let it settle before pressing the execute button.
  await page.waitForTimeout(500);
  const execute = page.locator('.graphiql-execute-button').first();
  await execute.click();

  // The result pane is a CodeMirror editor; read its whole value.
  const readResult = () => {
    const cm = document.querySelector('.graphiql-response .CodeMirror');
    if (cm && cm.CodeMirror) return cm.CodeMirror.getValue();
    const el = document.querySelector('.graphiql-response');
    return el ? el.innerText : '';
  };
  const waitForResult = (timeout) =>
    page.waitForFunction(
      (expected) => {
        const cm = document.querySelector('.graphiql-response .CodeMirror');
        const text = cm && cm.CodeMirror ? cm.CodeMirror.getValue() : '';
        const el = document.querySelector('.graphiql-response');
        return text.includes(expected) || (el ? el.innerText : '').includes(expected);
      },
      EXPECTED,
      { timeout, polling: 100 },
    );
  try {
    try {
      await waitForResult(Math.min(5_000, remaining()));
    } catch {
      // A slow machine can still be settling; run the query once more.
      await execute.click();
      await waitForResult(remaining());
    }
    report.queryResult = true;
  } catch {
    const shown = await page.evaluate(readResult).catch(() => '');
    report.error = `result pane never showed ${EXPECTED}; it shows: ${JSON.stringify(String(shown).slice(0, 500))}`;
  }
  if (process.env.GRAPHIQL_SCREENSHOT) {
    await page.screenshot({ path: process.env.GRAPHIQL_SCREENSHOT, timeout: remaining() }).catch(() => {});
  }
  return finish();
}

main().catch((err) => {
  report.error = report.error || String((err && err.message) || err).split('\n')[0];
  finish(1);
});
