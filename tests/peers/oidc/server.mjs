// Test-only OpenID Connect peer for the SPE test suites: a stand-in for LS-Login built on the
// OpenID Certified `oidc-provider` package. NEVER expose it beyond 127.0.0.1: it mints tokens for
// any listed user on request and signs whatever it is asked to sign.
//
// One process serves three ports (base = SPE_OIDC_PORT, default 59100):
//   base      provider A, issuer http://127.0.0.1:<base>       (the one the SPE trusts)
//   base + 1  provider B, issuer http://127.0.0.1:<base + 1>   (a second provider, never trusted)
//   base + 2  test helper: visa issuers' JWKS (jku) and a signing endpoint for forged tokens
//
// Provider A/B: discovery, JWKS, authorization code + PKCE with dev login pages, device flow,
// refresh tokens, introspection, userinfo, and JWT access tokens (RS256, typ at+jwt) for the
// resource `urn:spe:api` with `aud` = SPE_OIDC_AUDIENCE (default `spe-api`). LS-Login claim
// shapes: `sub` = `<hex>@lifescience-ri.eu`, `eduperson_entitlement` group URNs,
// `ga4gh_passport_v1` (visa JWTs), `crypt4ghPublicKeys`. They are in the access token and in
// userinfo (LS-Login releases them from userinfo).
//
// Test-only grant `urn:spe:test:user` (client `spe-test`, secret `spe-test-secret`, param
// `user=<name>`): an access token for a listed user, with no browser. Users: GET helper /users.
// With `resource=urn:spe:api` it is a JWT for the API carrying the LS-Login claims; without, it
// is opaque, carries no LS-Login claims (they come from userinfo only, as at LS-Login), has no
// `aud`, and is valid at userinfo and introspection. Client `spe-api` (secret `spe-api-secret`)
// may use the grant too: its opaque tokens are issued to the client named as the API audience.
// Client `spe-introspect` (secret `spe-introspect-secret`) introspects (RFC 7662); client
// `spe-introspect-slow` (secret `spe-introspect-slow-secret`) too, each answer after 3 s.
// User `shapeshifter`: userinfo answers for its tokens with researcher's sub (a lying provider).
//
// Helper (base + 2):
//   GET  /users                          the users, their subs and entitlements
//   POST /calls {token}                  how often provider A's userinfo and introspection
//                                        were asked about `token`: {userinfo, introspection}
//   GET  /trusted/jwks.json              JWKS of the trusted visa issuer  (iss <helper>/trusted)
//   GET  /untrusted/jwks.json            JWKS of an untrusted visa issuer (iss <helper>/untrusted)
//   POST /sign {key, claims, header?}    a compact JWS over `claims`; key is one of
//        provider (A's real signing key), second (B's), unknown (a key in no JWKS),
//        visa-trusted, visa-untrusted (visa headers carry the issuer's jku)
//
// SPE_OIDC_TOKEN_LOG=<file>: every token and code handed out (access, refresh and ID tokens,
// authorization and device codes, /sign outputs) is appended there, one a line, so that a test
// run can check that none of them reached its logs (tests/contract/no-secrets-in-logs.sh).
import fs from 'node:fs';
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const BASE = Number(process.env.SPE_OIDC_PORT || 59100);
const AUDIENCE = process.env.SPE_OIDC_AUDIENCE || 'spe-api';
const RESOURCE = 'urn:spe:api';
const HOST = '127.0.0.1';
const HELPER = `http://${HOST}:${BASE + 2}`;
const AUTHORITY = 'login.aai.lifescience-ri.eu';
const group = (g) => `urn:geant:lifescience-ri.eu:group:${g}#${AUTHORITY}`;

// Datasets the passports grant (ControlledAccessGrants visa values).
export const DATASET_GRANT = 'https://ega.example.org/datasets/EGAD00000000001';
export const OTHER_GRANT = 'https://ega.example.org/datasets/EGAD00000000999';

const TOKEN_LOG = process.env.SPE_OIDC_TOKEN_LOG;
function recordTokens(...values) {
  if (!TOKEN_LOG) return;
  const lines = values.filter((v) => typeof v === 'string' && v.length >= 8).map((v) => `${v}\n`).join('');
  if (lines) fs.appendFileSync(TOKEN_LOG, lines, { mode: 0o600 });
}

const hexSub = (name) =>
  `${crypto.createHash('sha256').update(`spe-test:${name}`).digest('hex').slice(0, 40)}@lifescience-ri.eu`;

const USERS = {
  researcher: { entitlements: [group('spe-demo:researchers')], grants: [DATASET_GRANT] },
  researcher2: { entitlements: [group('spe-demo:researchers')], grants: [OTHER_GRANT] },
  controller: { entitlements: [group('spe-demo:data-controllers:role=manager')], grants: [] },
  // More data controllers, for two-person review and a third who breaks a tie.
  controller2: { entitlements: [group('spe-demo:data-controllers:role=manager')], grants: [] },
  controller3: { entitlements: [group('spe-demo:data-controllers:role=manager')], grants: [] },
  // Both a researcher and a data controller: never reviews the outputs of their own runs.
  steward: {
    entitlements: [group('spe-demo:researchers'), group('spe-demo:data-controllers:role=manager')],
    grants: [DATASET_GRANT],
  },
  collaborator: { entitlements: [group('spe-demo:collaborators')], grants: [] },
  operator: { entitlements: [group('spe-demo:role=operator')], grants: [] },
  // Logged in, but member of no group the SPE maps to a role.
  nobody: { entitlements: [group('other-vo')], grants: [] },
  // Userinfo about its tokens names researcher's sub: the SPE must refuse them.
  shapeshifter: { entitlements: [group('spe-demo:researchers')], grants: [] },
};
for (const [name, u] of Object.entries(USERS)) {
  u.name = name;
  u.sub = hexSub(name);
  u.email = `${name}@example.org`;
}
const bySub = new Map(Object.values(USERS).map((u) => [u.sub, u]));
const findUser = (id) => USERS[id] || bySub.get(id);

// sha256(token) -> {userinfo, introspection}: calls to provider A about each token.
const calls = new Map();
const tokenKey = (token) => crypto.createHash('sha256').update(token).digest('hex');
function countCall(kind, token) {
  if (typeof token !== 'string' || !token) return;
  const key = tokenKey(token);
  const c = calls.get(key) || { userinfo: 0, introspection: 0 };
  c[kind] += 1;
  calls.set(key, c);
}

async function rsaKey(kid) {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}
const publicJwk = ({ d, p, q, dp, dq, qi, ...pub }) => pub;

const keys = {
  provider: await rsaKey(`a-${crypto.randomBytes(6).toString('hex')}`),
  second: await rsaKey(`b-${crypto.randomBytes(6).toString('hex')}`),
  unknown: await rsaKey(`u-${crypto.randomBytes(6).toString('hex')}`),
  'visa-trusted': await rsaKey('visa-trusted-1'),
  'visa-untrusted': await rsaKey('visa-untrusted-1'),
};
const visaIssuer = {
  'visa-trusted': { iss: `${HELPER}/trusted`, jku: `${HELPER}/trusted/jwks.json` },
  'visa-untrusted': { iss: `${HELPER}/untrusted`, jku: `${HELPER}/untrusted/jwks.json` },
};

async function sign(keyName, claims, header = {}) {
  const jwk = keys[keyName];
  if (!jwk) throw new Error(`unknown key ${keyName}`);
  const key = await jose.importJWK(jwk, 'RS256');
  const extra = visaIssuer[keyName] ? { jku: visaIssuer[keyName].jku, typ: 'JWT' } : {};
  return new jose.CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: 'RS256', kid: jwk.kid, ...extra, ...header })
    .sign(key);
}

// GA4GH Passport (AAI 1.2): one ControlledAccessGrants visa per grant, from the trusted issuer.
async function passport(user) {
  const now = Math.floor(Date.now() / 1000);
  return Promise.all(
    user.grants.map((value) =>
      sign('visa-trusted', {
        iss: visaIssuer['visa-trusted'].iss,
        sub: user.sub,
        iat: now,
        exp: now + 3600,
        jti: crypto.randomUUID(),
        ga4gh_visa_v1: {
          type: 'ControlledAccessGrants',
          asserted: now - 86400,
          value,
          source: 'https://ega.example.org/dacs/EGAC00000000001',
          by: 'dac',
        },
      }),
    ),
  );
}

async function lsLoginClaims(user) {
  return {
    eduperson_entitlement: user.entitlements,
    ga4gh_passport_v1: await passport(user),
    crypt4ghPublicKeys: [],
  };
}

const resourceInfo = () => ({
  scope: 'openid profile email eduperson_entitlement ga4gh_passport_v1',
  audience: AUDIENCE,
  accessTokenTTL: 600,
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: 'RS256' } },
});

function makeProvider(port, signingKey) {
  const issuer = `http://${HOST}:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'spe-test',
        client_secret: 'spe-test-secret',
        grant_types: ['urn:spe:test:user', 'client_credentials', 'refresh_token', 'authorization_code'],
        redirect_uris: ['http://127.0.0.1:8080/auth/callback', 'http://localhost:8080/auth/callback'],
        response_types: ['code'],
      },
      {
        // The client named as the API audience: its opaque tokens are for the API.
        client_id: 'spe-api',
        client_secret: 'spe-api-secret',
        grant_types: ['urn:spe:test:user'],
        redirect_uris: [],
        response_types: [],
      },
      {
        // Introspection credentials whose every introspection answers after 3 s: the slow
        // provider a real one can be, for the test that nobody else waits on it.
        client_id: 'spe-introspect-slow',
        client_secret: 'spe-introspect-slow-secret',
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      },
      {
        // The SPE's introspection credentials (RFC 7662).
        client_id: 'spe-introspect',
        client_secret: 'spe-introspect-secret',
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      },
      {
        // The web UI: authorization code with PKCE (S256). Port 8080 is the dev deployment's
        // (deploy/dev/up.sh), 8089 the browser tests' (tests/browser/run.sh), so that they can
        // run beside a developer's stack.
        client_id: 'spe-web',
        client_secret: 'spe-web-secret',
        grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: [
          'http://127.0.0.1:8080/auth/callback',
          'http://localhost:8080/auth/callback',
          'http://127.0.0.1:8089/auth/callback',
        ],
        response_types: ['code'],
      },
      {
        // spectl: a public client using the device authorization flow.
        client_id: 'spectl',
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        redirect_uris: [],
        response_types: [],
      },
    ],
    jwks: { keys: [signingKey] },
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'eduperson_entitlement', 'ga4gh_passport_v1'],
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email'],
      eduperson_entitlement: ['eduperson_entitlement'],
      ga4gh_passport_v1: ['ga4gh_passport_v1'],
    },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => {
          if (indicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
          return resourceInfo();
        },
      },
    },
    async findAccount(ctx, id) {
      const user = findUser(id);
      if (!user) return undefined;
      return {
        accountId: user.sub,
        async claims() {
          return { sub: user.sub, name: user.name, email: user.email, ...(await lsLoginClaims(user)) };
        },
      };
    },
    async extraTokenClaims(ctx, token) {
      // Opaque tokens (no resource server) carry no LS-Login claims: userinfo has them.
      if (!token.resourceServer) return undefined;
      const user = token.accountId && findUser(token.accountId);
      // and the address, as LS-Login gives it under the email scope: the SPE writes to it.
      return user ? { ...(await lsLoginClaims(user)), email: user.email } : undefined;
    },
    ttl: { AccessToken: 600, DeviceCode: 600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
  });

  // Every token and code this provider hands out, for the no-secrets-in-logs check.
  provider.use(async (ctx, next) => {
    if (ctx.path === '/token/introspection') {
      const basic = (ctx.get('authorization') || '').replace(/^Basic /i, '');
      const client = Buffer.from(basic, 'base64').toString().split(':')[0];
      if (client === 'spe-introspect-slow') await new Promise((r) => setTimeout(r, 3000));
    }
    await next();
    if (ctx.path === '/me' && ctx.body?.sub === USERS.shapeshifter.sub) {
      // The lying provider: userinfo about someone else.
      ctx.body = { ...ctx.body, sub: USERS.researcher.sub };
    }
    if (port === BASE && ctx.path === '/me') {
      countCall('userinfo', (ctx.get('authorization') || '').replace(/^Bearer /i, ''));
    }
    if (port === BASE && ctx.path === '/token/introspection') {
      countCall('introspection', ctx.oidc?.params?.token);
    }
    const body = ctx.body;
    if (body && typeof body === 'object' && !Buffer.isBuffer(body) && typeof body.pipe !== 'function') {
      recordTokens(body.access_token, body.refresh_token, body.id_token, body.device_code);
    }
    const location = ctx.response.get('location');
    if (location) {
      try {
        recordTokens(new URL(location, issuer).searchParams.get('code'));
      } catch {
        // not a URL: nothing to record
      }
    }
  });

  // Test-only: a token for a listed user without a browser.
  provider.registerGrantType(
    'urn:spe:test:user',
    async (ctx) => {
      const user = findUser(ctx.oidc.params.user);
      if (!user) throw new Provider.errors.InvalidGrant('no such test user');
      const { client } = ctx.oidc;
      const grant = new provider.Grant({ accountId: user.sub, clientId: client.clientId });
      const scope = 'openid profile email eduperson_entitlement ga4gh_passport_v1';
      const jwt = ctx.oidc.params.resource === RESOURCE;
      if (ctx.oidc.params.resource && !jwt) throw new Provider.errors.InvalidTarget();
      if (jwt) {
        grant.addOIDCScope('openid profile email');
        grant.addResourceScope(RESOURCE, scope);
      } else {
        // Opaque, for userinfo (and introspection): the LS-Login claims are released there.
        grant.addOIDCScope(scope);
      }
      const grantId = await grant.save();
      const token = new provider.AccessToken({ accountId: user.sub, client, grantId, scope });
      if (jwt) token.resourceServer = new provider.ResourceServer(RESOURCE, resourceInfo());
      ctx.oidc.entity('AccessToken', token);
      const value = await token.save();
      ctx.body = { access_token: value, token_type: 'Bearer', expires_in: token.expiration, scope };
    },
    ['user', 'resource'],
  );
  return { provider, issuer };
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function helper() {
  return http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, HELPER);
      if (req.method === 'GET' && url.pathname === '/users') {
        return json(
          res,
          200,
          Object.fromEntries(
            Object.values(USERS).map((u) => [u.name, { sub: u.sub, eduperson_entitlement: u.entitlements, grants: u.grants }]),
          ),
        );
      }
      if (req.method === 'GET' && url.pathname === '/trusted/jwks.json') {
        return json(res, 200, { keys: [publicJwk(keys['visa-trusted'])] });
      }
      if (req.method === 'GET' && url.pathname === '/untrusted/jwks.json') {
        return json(res, 200, { keys: [publicJwk(keys['visa-untrusted'])] });
      }
      if (req.method === 'GET' && url.pathname === '/health') return json(res, 200, { ok: true });
      if (req.method === 'POST' && url.pathname === '/calls') {
        let body = '';
        for await (const chunk of req) body += chunk;
        const { token } = JSON.parse(body);
        return json(res, 200, calls.get(tokenKey(String(token))) || { userinfo: 0, introspection: 0 });
      }
      if (req.method === 'POST' && url.pathname === '/sign') {
        let body = '';
        for await (const chunk of req) body += chunk;
        const { key, claims, header } = JSON.parse(body);
        const signed = await sign(key, claims, header);
        recordTokens(signed);
        res.writeHead(200, { 'content-type': 'application/jwt' });
        return res.end(signed);
      }
      json(res, 404, { error: 'not found' });
    } catch (e) {
      json(res, 400, { error: String(e.message || e) });
    }
  });
}

const a = makeProvider(BASE, keys.provider);
const b = makeProvider(BASE + 1, keys.second);
a.provider.listen(BASE, HOST);
b.provider.listen(BASE + 1, HOST);
helper().listen(BASE + 2, HOST);
console.log(`oidc peer: issuer ${a.issuer}, second issuer ${b.issuer}, helper ${HELPER}`);
