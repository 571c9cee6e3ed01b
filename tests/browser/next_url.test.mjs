// The login page's `next` decision (nextUrl in nginx/html/login/login.js), as shipped: the script is
// evaluated in a bare vm context (only URL and a document that starts nothing), no browser needed.
// Run by tests/unit/test_login_next.py with `node --test`; every hostile spelling must come back as
// an absolute URL on the page's own origin whose path a browser cannot read as another host.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import vm from "node:vm";

const SCRIPT = new URL("../../nginx/html/login/login.js", import.meta.url);
const context = vm.createContext({ URL, document: { addEventListener() {} } });
vm.runInContext(readFileSync(SCRIPT, "utf8"), context, { filename: SCRIPT.pathname });
const { nextUrl } = context;

const ORIGINS = ["http://127.0.0.1:8080", "https://gateway.example", "http://[::1]:8443"];
const ORIGIN = ORIGINS[0];

// The reproductions: each resolves to a path starting with "//".
const REPORTED = ["/.//evil.example/phish", "/x/..//evil.example/phish", "/%2e%2e//evil.example",
                  "/a/../../\\evil.com", "//evil.example/x"];

// Prefixes that resolve away, separators a browser may read as "//", hosts in disguise.
const PREFIXES = ["", "/", "/.", "/./", "/x/..", "/a/../..", "/%2e", "/%2e%2e", "/%2E%2E/", "/.%2e", "/%2e%2e%2f",
                  " ", " /", "\t", "/\t", "\n/", "/\r\n", "%20/", "%09/", "/%00", "\u0000/", "\\", "/\\/.."];
const SEPARATORS = ["//", "/\\", "\\/", "\\\\", "/\t/", "/\n/", "/\r/", "/ /", "%2f%2f", "%2F%2F", "/%2f", "%5c%5c",
                    "/%5c", "%5C/", "%252f%252f", "/%252f", "%255c%255c", "///", "\\\\\\", "/\u3002/"];
const HOSTS = ["evil.example", "evil.example:80/phish", "user:pass@evil.example", "@evil.example",
               "127.0.0.1@evil.example", "evil.example%2f@127.0.0.1", "xn--e1awd7f.example", "\u0435vil.example",
               "evil\u3002example", "\uff45vil.example", "evil.example\\@127.0.0.1", "[::1]@evil.example"];
const SCHEMES = ["http:", "https:", "HTTP:", "hTtPs:", "ftp:", "javascript:", "JaVaScRiPt:", "java\tscript:",
                 "java\nscript:", " javascript:", "\u0000javascript:", "data:", "DATA:", "vbscript:", "VBScript:",
                 "blob:", "file:", "ws:", "wss:", "about:"];
const SCHEME_RESTS = ["//evil.example/", "/\\evil.example", "\\\\evil.example", "evil.example", "/evil.example",
                      "alert(1)", "text/html,<script>alert(1)</script>", "text/html;base64,PHNjcmlwdD4=",
                      "http://evil.example/x", "//127.0.0.1@evil.example", "%2f%2fevil.example", "\t//evil.example"];

function hostile() {
  const values = new Set(REPORTED);
  for (const prefix of PREFIXES) {
    for (const separator of SEPARATORS) {
      for (const host of HOSTS) {
        values.add(prefix + separator + host);
      }
    }
  }
  for (const scheme of SCHEMES) {
    for (const rest of SCHEME_RESTS) {
      values.add(scheme + rest);
    }
  }
  // The same spellings percent-encoded once and twice, as a hand-made link may carry them.
  for (const value of [...values].filter((_, index) => index % 7 === 0)) {
    values.add(encodeURIComponent(value));
    values.add(encodeURIComponent(encodeURIComponent(value)));
  }
  return [...values];
}

// The page hands nextUrl its own search and hash: what the browser made of the address.
function fromAddress(next, origin) {
  const page = new URL(`${origin}/login/?next=${next}`);
  return nextUrl(page.search + page.hash, page.origin);
}

function assertOnOrigin(result, origin, next) {
  const label = JSON.stringify(next);
  assert.ok(typeof result === "string" && URL.canParse(result), `${label} gave ${result}, not an absolute URL`);
  const url = new URL(result);
  assert.equal(result, url.href, `${label} gave ${result}, not an absolute URL`);
  assert.equal(url.origin, origin, `${label} left the origin: ${result}`);
  assert.ok(result.startsWith(`${origin}/`), `${label} gave ${result}`);
  assert.doesNotMatch(url.pathname, /^\/[\/\\]/, `${label} gave a scheme-relative path: ${result}`);
  assert.equal(url.username + url.password, "", `${label} kept userinfo: ${result}`);
}

test("the issue's reproductions go to the gateway's / and nowhere else", () => {
  for (const next of REPORTED) {
    assert.equal(nextUrl(`?next=${next}`, ORIGIN), `${ORIGIN}/`, JSON.stringify(next));
    assert.equal(fromAddress(next, ORIGIN), `${ORIGIN}/`, JSON.stringify(next));
  }
});

test("every generated hostile next resolves to an absolute URL on the page's origin", () => {
  const values = hostile();
  assert.ok(values.length > 500, `only ${values.length} values`);
  for (const origin of ORIGINS) {
    for (const next of values) {
      assertOnOrigin(nextUrl(`?next=${next}`, origin), origin, next);
      assertOnOrigin(fromAddress(next, origin), origin, next);
    }
  }
});

test("a path on the gateway is kept exactly, query and fragment included", () => {
  const kept = ["/api/protected/x?y=1", "/app/#frag", "/api/protected/whoami?view=full&lang=en",
                "/api/protected/x?next=/y&z=%2F#a?b", "/%2F%2Fevil.example/", "/api/protected/caf%C3%A9"];
  for (const origin of ORIGINS) {
    for (const next of kept) {
      assert.equal(nextUrl(`?next=${next}`, origin), origin + next, next);
      assert.equal(fromAddress(next, origin), origin + next, next);
    }
  }
});

test("the login page itself is never the target", () => {
  for (const next of ["/login/", "/login", "/login/?next=/api/protected/", "/./login/", "/x/../login/#a"]) {
    assert.equal(nextUrl(`?next=${next}`, ORIGIN), `${ORIGIN}/`, next);
  }
});

test("without a next there is nothing to follow", () => {
  for (const search of ["", "?", "?other=/api/", "?nextx=/api/", "#next=/api/", "?Next=/api/"]) {
    assert.equal(nextUrl(search, ORIGIN), null, search);
  }
});
