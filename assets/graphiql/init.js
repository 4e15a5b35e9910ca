// Concierge GraphiQL bootstrap (kept out of index.html so that a strict
// `script-src 'self'` Content-Security-Policy works).
//
// - Queries and mutations: POST /graphql on this origin.
// - Subscriptions: graphql-ws (graphql-transport-ws protocol) over a WebSocket
//   at /graphql on this origin (ws:// or wss:// following the page).
//   WebSockets cannot carry custom HTTP headers, so the Authorization header
//   typed in GraphiQL's headers editor is sent in the connection_init payload
//   as `{ "authorization": "<value>" }`.
(function () {
  'use strict';

  var GRAPHQL_PATH = '/graphql';
  var httpUrl = location.origin + GRAPHQL_PATH;
  var wsUrl =
    (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + GRAPHQL_PATH;

  var DEFAULT_QUERY = [
    '# Welcome to Concierge GraphiQL.',
    '#',
    '# Put your token in the Headers tab below, e.g.',
    '#   { "Authorization": "Bearer <token>" }',
    '# It is sent with every request, and with subscriptions (WebSocket) too.',
    '#',
    '# Run a query with Ctrl-Enter (Cmd-Enter on macOS) or the play button.',
    '',
    'query Me {',
    '  me {',
    '    id',
    '    email',
    '    fullName',
    '  }',
    '}',
    '',
  ].join('\n');

  // Returns the Authorization value from a headers object (any letter case),
  // or undefined.
  function authorizationFrom(headers) {
    if (!headers || typeof headers !== 'object') return undefined;
    for (var name in headers) {
      if (
        Object.prototype.hasOwnProperty.call(headers, name) &&
        name.toLowerCase() === 'authorization' &&
        headers[name] != null &&
        String(headers[name]) !== ''
      ) {
        return String(headers[name]);
      }
    }
    return undefined;
  }

  // The headers GraphiQL stored in localStorage (only present when the user
  // lets GraphiQL persist headers); used when the fetcher was given none.
  function storedHeaders() {
    try {
      var raw = window.localStorage.getItem('graphiql:headers');
      return raw ? JSON.parse(raw) : undefined;
    } catch (_) {
      return undefined;
    }
  }

  // One lazy graphql-ws client (and GraphiQL fetcher) per Authorization value.
  // A lazy client opens its socket on the first subscription and closes it
  // after the last one ends, so idle entries hold no connection. Keying by the
  // token means that changing the token opens a new, correctly authenticated
  // connection, while subscriptions already running keep theirs.
  var fetchers = new Map();

  function fetcherFor(authorization) {
    var key = authorization || '';
    var fetcher = fetchers.get(key);
    if (fetcher) return fetcher;
    var wsClient = graphqlWs.createClient({
      url: wsUrl,
      lazy: true,
      connectionParams: function () {
        return authorization ? { authorization: authorization } : {};
      },
    });
    fetcher = GraphiQL.createFetcher({
      url: httpUrl,
      subscriptionUrl: wsUrl,
      wsClient: wsClient,
      // Plain JSON over HTTP; subscriptions use the WebSocket above.
      enableIncrementalDelivery: false,
      headers: { accept: 'application/graphql-response+json, application/json' },
    });
    fetchers.set(key, fetcher);
    return fetcher;
  }

  // GraphiQL passes the parsed contents of its headers editor as
  // `opts.headers` on every call (queries, subscriptions and introspection).
  function fetcher(graphQLParams, opts) {
    var headers = opts && opts.headers;
    var authorization =
      authorizationFrom(headers) || (headers ? undefined : authorizationFrom(storedHeaders()));
    return fetcherFor(authorization)(graphQLParams, opts);
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: 'headers',
    })
  );
})();
