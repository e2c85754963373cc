#!/usr/bin/env node
// Runs a real OpenID Provider (npm oidc-provider 8.x) on 127.0.0.1 for the
// keyless end-to-end tests.
//
// Tokens come from two flows:
// - client_credentials with a `resource` parameter: a JWT access token whose
//   `sub` is the client id.
// - authorization_code: the authorization request's `login_hint` becomes the
//   account id, so a test picks the `sub` of both the ID token and the JWT
//   access token.
//
// The `aud` of a JWT access token is the resource indicator. Resource
// indicators must be absolute URIs (RFC 8707), so the resource
// `urn:audience:<name>` yields the plain audience `<name>`, such as `keyless`.
//
// Usage:
//   node oidc_provider.js [--port N] [--alg RS256|PS256|ES256|EdDSA]
//       [--client ID:SECRET]... [--ttl SECONDS] [--key-out FILE]
//       [--claims FILE]
//
// --port (or OIDC_PROVIDER_PORT) 0 lets the kernel choose a free port.
// --key-out writes the private signing key as a JWK set, so a test can sign
// crafted tokens (expired, wrong audience) with a key the JWKS publishes.
// --claims names a JSON file mapping a subject to extra claims, reread for
// every token.
//
// Once listening it prints one JSON line to stdout:
//   {"ready":true,"issuer":"http://127.0.0.1:PORT","port":PORT,"alg":"RS256","kid":"..."}

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const REDIRECT_URI = 'http://127.0.0.1/callback';
const PLAIN_AUDIENCE_PREFIX = 'urn:audience:';
const RESOURCE_SCOPE = 'api';
const DEFAULT_CLIENT = 'keyless-e2e:keyless-e2e-secret';

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_PROVIDER_PORT ?? '0' },
    alg: { type: 'string', default: 'RS256' },
    client: { type: 'string', multiple: true, default: [DEFAULT_CLIENT] },
    ttl: { type: 'string', default: '600' },
    'key-out': { type: 'string' },
    claims: { type: 'string' },
  },
});

function generateSigningKey(alg) {
  let pair;
  if (alg === 'RS256' || alg === 'PS256') {
    pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  } else if (alg === 'ES256') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  } else if (alg === 'EdDSA') {
    pair = crypto.generateKeyPairSync('ed25519');
  } else {
    throw new Error(`unsupported --alg ${alg}: expected RS256, PS256, ES256 or EdDSA`);
  }
  const jwk = pair.privateKey.export({ format: 'jwk' });
  jwk.kid = `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}`;
  jwk.alg = alg;
  jwk.use = 'sig';
  return jwk;
}

function parseClient(spec) {
  const separator = spec.indexOf(':');
  if (separator <= 0) {
    throw new Error(`invalid --client ${spec}: expected ID:SECRET`);
  }
  return {
    client_id: spec.slice(0, separator),
    client_secret: spec.slice(separator + 1),
    grant_types: ['client_credentials', 'authorization_code'],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'client_secret_basic',
  };
}

// Reads the extra claims of one subject from the --claims file. The file is
// reread for every token so a test can change it while the provider runs.
function extraClaimsFor(subject) {
  if (!options.claims || !fs.existsSync(options.claims)) {
    return undefined;
  }
  const bySubject = JSON.parse(fs.readFileSync(options.claims, 'utf8'));
  return bySubject[subject];
}

const alg = options.alg;
const ttlSeconds = Number.parseInt(options.ttl, 10);
const signingKey = generateSigningKey(alg);
if (options['key-out']) {
  fs.writeFileSync(options['key-out'], JSON.stringify({ keys: [signingKey] }), { mode: 0o600 });
}

const configuration = {
  clients: options.client.map(parseClient),
  jwks: { keys: [signingKey] },
  clientDefaults: { id_token_signed_response_alg: alg },
  enabledJWA: { idTokenSigningAlgValues: [alg] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  scopes: ['openid'],
  ttl: {
    AccessToken: ttlSeconds,
    ClientCredentials: ttlSeconds,
    IdToken: ttlSeconds,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => ({
        scope: RESOURCE_SCOPE,
        audience: resource.startsWith(PLAIN_AUDIENCE_PREFIX)
          ? resource.slice(PLAIN_AUDIENCE_PREFIX.length)
          : resource,
        accessTokenTTL: ttlSeconds,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg } },
      }),
    },
  },
  findAccount: (_ctx, accountId) => ({
    accountId,
    claims: () => ({ sub: accountId }),
  }),
  extraTokenClaims: (_ctx, token) => extraClaimsFor(token.accountId ?? token.clientId),
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
};

const port = Number.parseInt(options.port, 10);
const server = http.createServer();

// Completes an interaction with no page shown: the login prompt logs in the
// account named by the authorization request's login_hint, and the consent
// prompt grants every scope the request is missing.
async function finishInteraction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);

  if (details.prompt.name === 'login') {
    const accountId = details.params.login_hint;
    if (!accountId) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('login_hint is missing from the authorization request; it names the subject to log in\n');
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
    return;
  }

  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details;
  if (missingOIDCScope) {
    grant.addOIDCScope(missingOIDCScope.join(' '));
  }
  if (missingOIDCClaims) {
    grant.addOIDCClaims(missingOIDCClaims);
  }
  for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

server.listen(port, '127.0.0.1', () => {
  const actualPort = server.address().port;
  const issuer = `http://127.0.0.1:${actualPort}`;
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (_ctx, error) => {
    console.error(`oidc-provider server_error: ${error.stack}`);
  });
  const handleProviderRequest = provider.callback();

  server.on('request', (req, res) => {
    if (req.url.startsWith('/interaction/')) {
      finishInteraction(provider, req, res).catch((error) => {
        console.error(`interaction failed: ${error.stack}`);
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`interaction failed: ${error.message}\n`);
      });
      return;
    }
    handleProviderRequest(req, res);
  });

  const ready = {
    ready: true, issuer, port: actualPort, alg, kid: signingKey.kid,
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
