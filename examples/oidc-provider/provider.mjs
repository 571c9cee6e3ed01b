// A real OpenID provider (oidc-provider, pinned in package.json): client credentials only, JWT access
// tokens (RFC 9068) for the resource a client names (RFC 8707). `make demo` starts it beside the gateway
// (launcher/oidc_demo.py), the tests through tests/oidc_support.py.
//
//   node examples/oidc-provider/provider.mjs --port N --jwks FILE [--host 127.0.0.1] [--issuer URL]
//        [--resource URI]... [--scopes "api:read api:write"] [--roles "user"] [--ttl SECONDS]
//
// Each option may come from the environment instead (OIDC_PORT, OIDC_JWKS, OIDC_HOST, OIDC_ISSUER,
// OIDC_RESOURCES space-separated, OIDC_SCOPES, OIDC_ROLES, OIDC_TTL_SECONDS); the client's credentials come
// only from OIDC_CLIENT_ID and OIDC_CLIENT_SECRET, so the secret never shows in a process list.
// FILE is a JWKS of private keys (RSA for RS256, EC P-256 for ES256, each with its "alg"); for each
// algorithm the first key of that algorithm in the file signs, so a rotation writes the new key first
// and restarts the provider. A token request may add signing_alg=ES256 (this fixture's own parameter,
// ignored by other servers) to have that token signed with the ES256 key; RS256 otherwise.
// Prints "ready <issuer>" once listening; exits 0 on SIGTERM or SIGINT.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import { isIP } from "node:net";
import { parseArgs } from "node:util";

function fail(message) {
  console.error(`provider.mjs: ${message}`);
  process.exit(2);
}

let options;
try {
  ({ values: options } = parseArgs({
    options: {
      port: { type: "string", default: process.env.OIDC_PORT },
      host: { type: "string", default: process.env.OIDC_HOST || "127.0.0.1" },
      issuer: { type: "string", default: process.env.OIDC_ISSUER },
      jwks: { type: "string", default: process.env.OIDC_JWKS },
      resource: { type: "string", multiple: true, default: (process.env.OIDC_RESOURCES || "").split(" ").filter(Boolean) },
      scopes: { type: "string", default: process.env.OIDC_SCOPES || "api:read api:write" },
      roles: { type: "string", default: process.env.OIDC_ROLES || "" },
      ttl: { type: "string", default: process.env.OIDC_TTL_SECONDS || "300" },
    },
    strict: true,
  }));
} catch (error) {
  fail(error.message);
}

const port = Number(options.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) fail("--port (OIDC_PORT) must be a port number, 1-65535");
// Loopback only: neither the demo nor the tests open a port beyond this machine.
const host = options.host;
if (!((isIP(host) === 4 && host.startsWith("127.")) || host === "::1")) {
  fail(`--host (OIDC_HOST) must be a loopback address (127.0.0.0/8 or ::1), not ${JSON.stringify(host)}`);
}
const issuer = options.issuer || `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
if (!/^https?:\/\/[^/?#]+\/?$/.test(issuer)) fail("--issuer (OIDC_ISSUER) must be an http(s) origin, without path");
if (!options.jwks) fail("--jwks (OIDC_JWKS) is required: a file with the private JWKS");
const clientId = process.env.OIDC_CLIENT_ID;
const clientSecret = process.env.OIDC_CLIENT_SECRET;
if (!clientId || !clientSecret) fail("OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are required");
if (!options.resource.length) fail("at least one --resource (OIDC_RESOURCES) is required");
const resources = new Set(options.resource);
const ttl = Number(options.ttl);
if (!Number.isInteger(ttl) || ttl < 1) fail("--ttl (OIDC_TTL_SECONDS) must be a whole number of seconds");
const roles = options.roles.split(" ").filter(Boolean);

let jwks;
try {
  jwks = JSON.parse(readFileSync(options.jwks, "utf8"));
} catch (error) {
  fail(`--jwks: cannot read a JSON Web Key Set from ${options.jwks}: ${error.message}`);
}
if (!Array.isArray(jwks?.keys)) fail(`--jwks: ${options.jwks} has no "keys" array`);
const signingAlgs = new Set(jwks.keys.map((key) => key.alg));

// Loaded once the options are known good, so a refusal is quick.
const { default: Provider, errors } = await import("oidc-provider");

const provider = new Provider(issuer, {
  jwks,
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ["client_credentials"],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // RFC 8707 section 2: only resources this server knows; no resource means no JWT access token.
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo(ctx, resource) {
        if (!resources.has(resource)) throw new errors.InvalidTarget("unknown resource");
        // The token endpoint keeps only the grant's own parameters; the parsed body still holds this one.
        const alg = ctx.oidc.body?.signing_alg || "RS256";
        if (!signingAlgs.has(alg)) throw new errors.InvalidRequest("signing_alg has no key");
        return { scope: options.scopes, accessTokenTTL: ttl, accessTokenFormat: "jwt", jwt: { sign: { alg } } };
      },
    },
  },
  extraTokenClaims: () => (roles.length ? { roles } : undefined),
  // No interaction ever sets a cookie here; random keys keep the library's start-up warning away.
  cookies: { keys: [randomBytes(32).toString("base64url")] },
  ttl: { ClientCredentials: ttl },
});
provider.on("server_error", (_ctx, error) => console.error(`server_error: ${error.message}`));

const server = http.createServer(provider.callback());
server.on("error", (error) => fail(`cannot listen on ${host}:${port}: ${error.message}`));
server.listen(port, host, () => console.log(`ready ${issuer}`));

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
