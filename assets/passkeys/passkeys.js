// The /passkeys page: passkey sign-in (passwordless or as a second factor) and adding a
// passkey, through the gateway's own GraphQL API. No library: WebAuthn's binary fields travel
// as base64url, converted here.
'use strict';

const TOKEN = 'concierge.token';
const $ = (id) => document.getElementById(id);
let challenge = null;

function say(text) {
  $('status').textContent = text;
}

async function gql(query, variables = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json' };
  const token = sessionStorage.getItem(TOKEN);
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await res.json();
  if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
  return body.data;
}

function fromB64url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
}

function toB64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let raw = '';
  for (const b of bytes) raw += String.fromCharCode(b);
  return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function creationOptions(options) {
  const pk = structuredClone(options.publicKey);
  pk.challenge = fromB64url(pk.challenge);
  pk.user.id = fromB64url(pk.user.id);
  pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  return { publicKey: pk };
}

function requestOptions(options) {
  const pk = structuredClone(options.publicKey);
  pk.challenge = fromB64url(pk.challenge);
  pk.allowCredentials = (pk.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  return { publicKey: pk };
}

function answer(credential) {
  const r = credential.response;
  const response = { clientDataJSON: toB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64url(r.attestationObject);
    if (r.getTransports) response.transports = r.getTransports();
  } else {
    response.authenticatorData = toB64url(r.authenticatorData);
    response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
  }
  return {
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    response,
    extensions: credential.getClientExtensionResults(),
  };
}

function signedIn(payload) {
  if (payload.twoFactorChallenge) {
    challenge = payload.twoFactorChallenge.challenge;
    $('signin').hidden = true;
    $('second-factor').hidden = false;
    say('Confirm with a passkey or a code.');
    return;
  }
  sessionStorage.setItem(TOKEN, payload.token);
  challenge = null;
  return show();
}

const PAYLOAD = '{ token twoFactorChallenge { challenge } }';

async function passkeyLogIn(withChallenge) {
  const begun = (await gql(`mutation($c: String) { beginPasskeyLogIn(challenge: $c) { id options } }`, { c: withChallenge })).beginPasskeyLogIn;
  const credential = await navigator.credentials.get(requestOptions(begun.options));
  const done = await gql(`mutation($id: ID!, $cred: JSON!) { finishPasskeyLogIn(ceremony: $id, credential: $cred) ${PAYLOAD} }`, {
    id: begun.id,
    cred: answer(credential),
  });
  return signedIn(done.finishPasskeyLogIn);
}

async function show() {
  const token = sessionStorage.getItem(TOKEN);
  $('account').hidden = !token;
  $('signin').hidden = !!token;
  $('second-factor').hidden = true;
  if (!token) return;
  const me = (await gql('{ me { email passkeys { id name lastUsedAt } } }')).me;
  $('who').textContent = me.email;
  $('passkey-list').replaceChildren(
    ...me.passkeys.map((k) => {
      const li = document.createElement('li');
      li.textContent = k.lastUsedAt ? `${k.name} (last used ${k.lastUsedAt})` : k.name;
      return li;
    }),
  );
  say(`Signed in as ${me.email}.`);
}

async function addPasskey() {
  const begun = (await gql('mutation { beginPasskeyRegistration { id options } }')).beginPasskeyRegistration;
  const credential = await navigator.credentials.create(creationOptions(begun.options));
  await gql('mutation($id: ID!, $cred: JSON!, $name: String) { finishPasskeyRegistration(ceremony: $id, credential: $cred, name: $name) { id } }', {
    id: begun.id,
    cred: answer(credential),
    name: $('passkey-name').value || null,
  });
  await show();
  say('Passkey added.');
}

async function signOut() {
  try {
    await gql('mutation { logOut }');
  } finally {
    sessionStorage.removeItem(TOKEN);
    await show();
    say('Signed out.');
  }
}

function guard(action) {
  return () => action().catch((e) => say(`Refused: ${e.message}`));
}

document.addEventListener('DOMContentLoaded', () => {
  $('passkey-signin').addEventListener('click', guard(() => passkeyLogIn(null)));
  $('passkey-second-factor').addEventListener('click', guard(() => passkeyLogIn(challenge)));
  $('password-signin').addEventListener('click', guard(async () => {
    const data = await gql(`mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) ${PAYLOAD} }`, {
      e: $('email').value,
      p: $('password').value,
    });
    return signedIn(data.logIn);
  }));
  $('code-submit').addEventListener('click', guard(async () => {
    const data = await gql(`mutation($c: String!, $code: String!) { completeTwoFactorLogIn(challenge: $c, code: $code) ${PAYLOAD} }`, {
      c: challenge,
      code: $('code').value,
    });
    return signedIn(data.completeTwoFactorLogIn);
  }));
  $('add-passkey').addEventListener('click', guard(addPasskey));
  $('sign-out').addEventListener('click', guard(signOut));
  guard(show)();
});
