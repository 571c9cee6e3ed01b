// The login page in a real headless browser: Playwright (playwright-core, which never downloads a
// browser) driving Debian's chromium. tests/e2e/test_browser.py starts the stack and runs this with:
//   JWTGATE_URL       the gateway, e.g. http://127.0.0.1:8080
//   JWTGATE_USERNAME  a user without the admin role
//   JWTGATE_PASSWORD  its password
//   JWTGATE_COOKIE_SECURE  "1" when the stack runs with AUTH_COOKIE_SECURE=1 (default "0", as make run)
//   CHROMIUM          the browser (default /usr/bin/chromium)
//   SCREENSHOT_DIR    optional: a PNG of the page after each step
// Exits 0 when every step passed; prints one line per step and "N passed, N failed".
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

const BASE = process.env.JWTGATE_URL;
const USERNAME = process.env.JWTGATE_USERNAME;
const PASSWORD = process.env.JWTGATE_PASSWORD;
const COOKIE_SECURE = process.env.JWTGATE_COOKIE_SECURE === "1";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR;
if (!BASE || !USERNAME || !PASSWORD) {
  console.error("set JWTGATE_URL, JWTGATE_USERNAME and JWTGATE_PASSWORD");
  process.exit(2);
}
// The validator polls revocations every 200 ms; the bound is one second.
const REVOCATION_BOUND_MS = 1000;
const PROTECTED_PAGE = "/api/protected/whoami?view=full&lang=en";
// Never an open redirect (issue 18): the reproductions, the earlier cases, and a few of
// the spellings tests/browser/next_url.test.mjs generates.
const HOSTILE_NEXT = [
  "/.//evil.example/phish", "/x/..//evil.example/phish", "/%2e%2e//evil.example", "/a/../../\\evil.com",
  "//evil.example/x", "//evil.example/", "/\\evil.example/", "https://evil.example/", "javascript:alert(1)",
  "%2F%2Fevil.example/", "/login/", "/\t/evil.example", "\\\\evil.example", "HtTpS:evil.example",
  "//user:pass@evil.example/", "/.%2e/%5c%5cevil.example", "data:text/html,<script>alert(1)</script>",
  "vbscript:msgbox(1)", "/%2e%2e/%2f%2fevil.example", "\u0435vil.example",
];

// Without these, chromium on a machine with no way out stalls on its background fetches.
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const results = [];
let shot = 0;

async function step(name, page, body) {
  try {
    await body();
    results.push(true);
    console.log(`ok - ${name}`);
  } catch (error) {
    results.push(false);
    console.log(`not ok - ${name}\n  ${String(error.stack || error).replaceAll("\n", "\n  ")}`);
    console.log(`  page: ${page.url()}`);
  }
  if (SCREENSHOT_DIR) {
    shot += 1;
    await page.screenshot({ path: join(SCREENSHOT_DIR, `${String(shot).padStart(2, "0")}.png`) }).catch(() => {});
  }
}

function path(page) {
  const url = new URL(page.url());
  assert.equal(url.origin, new URL(BASE).origin, `left the gateway: ${page.url()}`);
  return url.pathname + url.search;
}

// Where a signed-in page may send the browser: an absolute URL on the gateway, whose path no
// browser reads as another host.
function assertOnGateway(address) {
  assert.ok(URL.canParse(address), `not an absolute URL: ${address}`);
  const url = new URL(address);
  assert.equal(url.origin, new URL(BASE).origin, `left the gateway: ${address}`);
  assert.ok(address.startsWith(`${url.origin}/`), `not an absolute URL on it: ${address}`);
  assert.doesNotMatch(url.pathname, /^\/[\/\\]/, `a scheme-relative path: ${address}`);
}

async function expectLoginPage(page, next) {
  assert.equal(path(page), `/login/?next=${next}`);
  await page.locator("#login-form").waitFor({ state: "visible" });
  assert.equal(await page.locator("#session").isVisible(), false);
}

async function signIn(page) {
  await page.fill("#username", USERNAME);
  await page.fill("#password", PASSWORD);
  await page.click("#login");
}

async function pageJson(page) {
  return JSON.parse(await page.locator("body").innerText());
}

async function sessionCookies(context) {
  const cookies = await context.cookies(BASE + "/api/auth/");
  return Object.fromEntries(cookies.filter((c) => c.name.startsWith("jwtgate_")).map((c) => [c.name, c]));
}

const userDataDir = mkdtempSync(join(tmpdir(), "jwtgate-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    timeout: 30_000,
  });
  context.setDefaultTimeout(10_000);
  const page = context.pages()[0] || (await context.newPage());
  let stolenAccessCookie;

  await step("a protected page without a session redirects to the login page with next", page, async () => {
    const response = await page.goto(BASE + PROTECTED_PAGE);
    assert.equal(response.status(), 200);
    const redirect = await response.request().redirectedFrom()?.response();
    assert.equal(redirect?.status(), 302);
    await expectLoginPage(page, PROTECTED_PAGE);
    assert.match(await page.locator("#status").innerText(), /Sign in/);
  });

  await step("a JSON request without a session still gets the 401 JSON", page, async () => {
    const answer = await page.evaluate(async () => {
      const response = await fetch("/api/protected/", { headers: { Accept: "application/json" } });
      return { status: response.status, body: await response.json() };
    });
    assert.deepEqual(answer, {
      status: 401,
      body: { error: "missing_token", message: "Missing Authorization header" },
    });
  });

  await step("a wrong password is refused on the page", page, async () => {
    await page.fill("#username", USERNAME);
    await page.fill("#password", "not-the-password");
    await page.click("#login");
    await page.locator("#status.error").waitFor();
    assert.match(await page.locator("#status").innerText(), /Invalid username or password/);
    assert.equal(path(page), `/login/?next=${PROTECTED_PAGE}`);
  });

  await step("signing in follows next back to the protected page, which shows the identity", page, async () => {
    await signIn(page);
    await page.waitForURL(BASE + PROTECTED_PAGE);
    const identity = await pageJson(page);
    assert.equal(identity.userId, USERNAME);
    assert.equal(identity.path, "/api/protected/whoami");
    assert.ok(Array.isArray(identity.roles) && !identity.roles.includes("admin"), "a user without admin");
  });

  await step("the tokens are HttpOnly, SameSite=Strict cookies that page scripts cannot read", page, async () => {
    const cookies = await sessionCookies(context);
    assert.deepEqual(Object.keys(cookies).sort(), ["jwtgate_access", "jwtgate_refresh"]);
    for (const cookie of Object.values(cookies)) {
      assert.equal(cookie.httpOnly, true, cookie.name);
      assert.equal(cookie.sameSite, "Strict", cookie.name);
      assert.equal(cookie.secure, COOKIE_SECURE, cookie.name);
    }
    assert.equal(cookies.jwtgate_access.path, "/");
    assert.equal(cookies.jwtgate_refresh.path, "/api/auth/");
    assert.equal(await page.evaluate(() => document.cookie), "");
    stolenAccessCookie = cookies.jwtgate_access;
  });

  await step("a signed-in user on a forbidden page sees the 403, not the login page", page, async () => {
    const response = await page.goto(BASE + "/api/admin/");
    assert.equal(response.status(), 403);
    assert.equal(path(page), "/api/admin/");
    assert.equal((await pageJson(page)).error, "insufficient_scope");
  });

  await step("a cookie-authenticated write from the page itself passes the Origin check", page, async () => {
    const status = await page.evaluate(async () => {
      const response = await fetch("/api/protected/notes", { method: "POST", headers: { Accept: "application/json" } });
      return response.status;
    });
    assert.equal(status, 200);
  });

  await step("the login page shows the signed-in identity", page, async () => {
    await page.goto(BASE + "/login/");
    await page.locator("#session").waitFor({ state: "visible" });
    assert.equal(await page.locator("#user-id").innerText(), USERNAME);
    assert.equal(await page.locator("#continue").isVisible(), false);
  });

  for (const next of HOSTILE_NEXT) {
    await step(`a signed-in user's Continue link for next=${JSON.stringify(next)} stays on the gateway`, page,
               async () => {
      await page.goto(`${BASE}/login/?next=${next}`);
      await page.locator("#session").waitFor({ state: "visible" });
      const href = await page.locator("#continue-link").getAttribute("href");
      assertOnGateway(href);
      await page.click("#continue-link");
      await page.waitForURL((url) => url.pathname !== "/login/");
      assertOnGateway(page.url());
    });
  }

  await step("a refresh from the page rotates both cookies", page, async () => {
    await page.goto(BASE + "/login/");
    const before = await sessionCookies(context);
    const status = await page.evaluate(async () => {
      const response = await fetch("/api/auth/refresh", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
      });
      return response.status;
    });
    assert.equal(status, 200);
    const after = await sessionCookies(context);
    assert.notEqual(after.jwtgate_refresh.value, before.jwtgate_refresh.value);
    assert.notEqual(after.jwtgate_access.value, before.jwtgate_access.value);
  });

  await step("signing out clears both cookies", page, async () => {
    await page.goto(BASE + "/login/");
    await page.locator("#session").waitFor({ state: "visible" });
    await page.click("#logout");
    await page.locator("#login-form").waitFor({ state: "visible" });
    assert.match(await page.locator("#status").innerText(), /signed out/);
    assert.deepEqual(await sessionCookies(context), {});
  });

  await step("after signing out the protected page redirects to the login page again", page, async () => {
    await page.goto(BASE + PROTECTED_PAGE);
    await expectLoginPage(page, PROTECTED_PAGE);
  });

  await step("the signed-out access cookie, put back, is refused everywhere within the bound", page, async () => {
    // Logout revoked the token itself, not just the cookie: a stolen copy stops working too.
    // (The refresh above replaced the token stolen earlier: that one belongs to the same, ended session.)
    await context.addCookies([stolenAccessCookie]);
    const deadline = Date.now() + REVOCATION_BOUND_MS;
    let status;
    do {
      status = await page.evaluate(async () => {
        const response = await fetch("/api/protected/", { headers: { Accept: "application/json" } });
        return response.status;
      });
    } while (status !== 401 && Date.now() < deadline);
    assert.equal(status, 401);
    await page.goto(BASE + PROTECTED_PAGE);
    await expectLoginPage(page, PROTECTED_PAGE);
  });

  for (const next of HOSTILE_NEXT) {
    await step(`signing in with next=${JSON.stringify(next)} ends on the gateway`, page, async () => {
      // Signed out, whatever the step before left behind.
      await context.clearCookies();
      await page.goto(`${BASE}/login/?next=${next}`);
      await page.locator("#login-form").waitFor({ state: "visible" });
      await signIn(page);
      await page.waitForURL((url) => url.pathname !== "/login/");
      assertOnGateway(page.url());
    });
  }
} catch (error) {
  results.push(false);
  console.log(`not ok - the browser session\n  ${String(error.stack || error).replaceAll("\n", "\n  ")}`);
} finally {
  await context?.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

const passed = results.filter(Boolean).length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
