#!/usr/bin/env node
// Runs npm oauth2-mock-server 8.x on 127.0.0.1 as a second OIDC issuer for
// the keyless end-to-end tests. It mints the tokens that oidc-provider
// refuses to make: expired ones, `exp` missing or a string, `nbf` and `iat`
// in the future, array or missing audiences, and arbitrary nested claims.
//
// Tokens come from the client_credentials grant of POST /token. The form
// field `claims` contains a JSON object that the `beforeTokenSigning` hook
// merges into the payload just before signing: a member whose value is null
// removes that claim, so `{"exp": null}` yields a token without `exp`.
//
// Test-only routes, next to the library's own:
//   POST /_test/rotate  replaces the signing key with a new one; the JWKS
//                       then lists only the new key. Returns {"kid": "..."}.
//   GET  /_test/stats   returns {"jwksRequests": N, "discoveryRequests": N},
//                       the GETs of the key set and discovery document so far.
//
// Usage:
//   node mock_issuer.mjs [--port N] [--alg RS256|PS256|ES256|EdDSA]
//
// --port 0 (the default) lets the kernel choose a free port. Once listening
// it prints one JSON line to stdout:
//   {"ready":true,"issuer":"http://127.0.0.1:PORT","port":PORT,"alg":"RS256","kid":"..."}

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import { OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';

const JWKS_PATH = '/jwks';
const DISCOVERY_PATH = '/.well-known/openid-configuration';

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    alg: { type: 'string', default: 'RS256' },
  },
});

const stats = { jwksRequests: 0, discoveryRequests: 0 };

// Applies the request's `claims` form field to the payload about to be signed.
// The library's own defaults (iss, iat, exp, nbf, scope, aud) stay unless the
// field names them.
function applyClaimOverrides(token, req) {
  const text = req.body?.claims;
  if (text === undefined) {
    return;
  }
  const overrides = JSON.parse(text);
  for (const [name, value] of Object.entries(overrides)) {
    if (value === null) {
      delete token.payload[name];
    } else {
      token.payload[name] = value;
    }
  }
}

// Builds an issuer whose key store contains one fresh key. Rotation swaps in a
// whole new issuer and service because the library's key store cannot drop
// a key.
async function buildService(issuerUrl) {
  const issuer = new OAuth2Issuer();
  issuer.url = issuerUrl;
  const kid = `${options.alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}`;
  await issuer.keys.generate(options.alg, { kid });
  const service = new OAuth2Service(issuer);
  service.on('beforeTokenSigning', applyClaimOverrides);
  return { service, kid };
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer();
let current;

server.on('request', (req, res) => {
  const path = new URL(req.url, 'http://127.0.0.1').pathname;
  if (req.method === 'POST' && path === '/_test/rotate') {
    buildService(current.service.issuer.url).then(
      (next) => {
        current = next;
        sendJson(res, 200, { kid: next.kid });
      },
      (error) => {
        console.error(`key rotation failed: ${error.stack}`);
        sendJson(res, 500, { error: `key rotation failed: ${error.message}` });
      },
    );
    return;
  }
  if (req.method === 'GET' && path === '/_test/stats') {
    sendJson(res, 200, stats);
    return;
  }
  if (req.method === 'GET' && path === JWKS_PATH) {
    stats.jwksRequests += 1;
  } else if (req.method === 'GET' && path === DISCOVERY_PATH) {
    stats.discoveryRequests += 1;
  }
  current.service.requestHandler(req, res);
});

server.listen(Number.parseInt(options.port, 10), '127.0.0.1', async () => {
  const { port } = server.address();
  // The library would name the issuer http://localhost:PORT, which may
  // resolve to ::1 where nothing listens, so the issuer URL names the
  // address itself.
  const issuerUrl = `http://127.0.0.1:${port}`;
  current = await buildService(issuerUrl);
  const ready = {
    ready: true, issuer: issuerUrl, port, alg: options.alg, kid: current.kid,
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
