#!/usr/bin/env node
// A live-notifications client as a frontend would write it: the graphql-ws library over the
// `graphql-transport-ws` protocol, authenticating in `connection_init`.
//
// Usage: node tests/js/subscribe.mjs <wsUrl> <token>
//
// Prints one JSON line per happening, for the Rust test to read:
//   {"connected":true}                     the server acknowledged connection_init
//   {"next":{...data...}}                  a notification arrived
//   {"error":...}                          the subscription failed
//   {"closed":{"code":4401,"reason":"…"}}  the socket closed (then the process exits)
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: subscribe.mjs <wsUrl> <token>');
  process.exit(2);
}

const say = (line) => process.stdout.write(JSON.stringify(line) + '\n');

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  retryAttempts: 0,
  lazy: false,
  on: {
    connected: () => say({ connected: true }),
    closed: (event) => {
      say({ closed: { code: event.code, reason: event.reason } });
      setTimeout(() => process.exit(0), 50);
    },
  },
});

client.subscribe(
  { query: 'subscription { notifications { id event title read } }' },
  {
    next: (value) => say({ next: value.data ?? null, errors: value.errors ?? null }),
    error: (err) => say({ error: err instanceof Error ? err.message : err }),
    complete: () => say({ complete: true }),
  },
);
