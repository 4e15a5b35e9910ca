#!/usr/bin/env node
// GraphQL over HTTP conformance audit of a running Concierge gateway.
//
// Usage: node tests/js/audit.mjs <graphqlUrl>     (e.g. http://127.0.0.1:PORT/graphql)
//
// Runs graphql-http's server audit suite (`serverAudits` from 'graphql-http')
// against the URL with Node's global fetch and prints ONE JSON line to stdout:
//
//   [{"id":"4655","name":"MUST accept application/json ...","status":"ok","reason":null}, ...]
//
// `status` is what graphql-http reports: 'ok', or for a failed audit 'error'
// (a MUST), 'warn' (a SHOULD) or 'notice' (a MAY). An audit that throws instead
// of failing (graphql-http treats that as fatal: connection refused, a body that
// is not JSON, a timeout...) is reported with the status its requirement level
// would give a failure and `"fatal": true`. The exit code is always 0: the Rust
// test decides which results are acceptable.
import { serverAudits } from 'graphql-http';

const AUDIT_TIMEOUT_MS = Number(process.env.AUDIT_TIMEOUT_MS || 10_000);
const TOTAL_TIMEOUT_MS = Number(process.env.AUDIT_TOTAL_TIMEOUT_MS || 60_000);

function emit(results) {
  process.stdout.write(JSON.stringify(results) + '\n', () => process.exit(0));
}

function statusForFailure(name) {
  if (name.startsWith('MUST')) return 'error';
  if (name.startsWith('SHOULD')) return 'warn';
  return 'notice';
}

function describe(err) {
  if (err && err.name === 'TimeoutError') return `timed out after ${AUDIT_TIMEOUT_MS} ms`;
  const cause = err && err.cause ? ` (${err.cause.code || err.cause.message || err.cause})` : '';
  return `${(err && err.message) || String(err)}${cause}`;
}

async function main() {
  const url = process.argv[2];
  if (!url || !/^https?:\/\//.test(url)) {
    emit([
      {
        id: 'usage',
        name: 'MUST be given the GraphQL URL: node tests/js/audit.mjs <graphqlUrl>',
        status: 'error',
        reason: `bad or missing URL argument: ${JSON.stringify(url ?? null)}`,
      },
    ]);
    return;
  }

  // Node's global fetch, with every request bounded in time.
  const fetchFn = (input, init = {}) =>
    fetch(input, { ...init, signal: AbortSignal.timeout(AUDIT_TIMEOUT_MS) });

  const results = [];
  // Sequentially: the gateway under test runs on a 2-core machine.
  for (const audit of serverAudits({ url, fetchFn })) {
    let timer;
    try {
      const result = await Promise.race([
        audit.fn(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(Object.assign(new Error('audit timed out'), { name: 'TimeoutError' })),
            AUDIT_TIMEOUT_MS + 1_000,
          );
        }),
      ]);
      results.push({
        id: result.id,
        name: result.name,
        status: result.status,
        reason: result.status === 'ok' ? null : (result.reason ?? null),
      });
    } catch (err) {
      results.push({
        id: audit.id,
        name: audit.name,
        status: statusForFailure(audit.name),
        reason: `fatal: ${describe(err)}`,
        fatal: true,
      });
    } finally {
      clearTimeout(timer);
    }
  }
  emit(results);
}

const watchdog = setTimeout(() => {
  emit([
    {
      id: 'timeout',
      name: 'MUST finish the audit suite in time',
      status: 'error',
      reason: `the audit suite did not finish within ${TOTAL_TIMEOUT_MS} ms`,
    },
  ]);
}, TOTAL_TIMEOUT_MS);
watchdog.unref();

main().catch((err) => {
  emit([{ id: 'crash', name: 'MUST run the audit suite', status: 'error', reason: describe(err) }]);
});
