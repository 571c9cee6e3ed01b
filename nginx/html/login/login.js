// jwtgate login page: signs in with cookies, shows who the gateway says you are, signs out.
// The tokens live in HttpOnly cookies (POST /api/auth/login with "cookie": true): this script never
// sees them. Every request names itself an XHR and asks for JSON, so the gateway answers 401 JSON
// to it rather than redirecting here again.
"use strict";

const API_HEADERS = { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" };
const IDENTITY_URL = "/api/protected/";

const $ = (id) => document.getElementById(id);

// Where to go after signing in: the `next` the gateway appended (everything after "?next=", so its
// query and fragment survive) resolved against this origin, and handed to the browser as that
// absolute URL, so nothing is parsed twice. Only a path this gateway serves: same origin, not this
// page (it would go nowhere), and not starting with "//" once resolved ("/.//evil.example" does),
// which as a path alone is another host (RFC 3986 section 4.2). Anything else goes to "/", as the
// gateway's own `next` does; null when there is no `next`.
function nextUrl(search, origin) {
  if (!search.startsWith("?next=")) {
    return null;
  }
  const home = new URL("/", origin).href;
  let url;
  try {
    url = new URL(search.slice("?next=".length), origin);
  } catch {
    return home;
  }
  if (url.origin !== origin || /^\/[\/\\]/.test(url.pathname) || url.pathname === "/login"
      || url.pathname.startsWith("/login/")) {
    return home;
  }
  // Rebuilt from its parts: userinfo ("//user@host") is dropped, not handed on.
  return url.origin + url.pathname + url.search + url.hash;
}

function showStatus(message, isError = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

// The identity the gateway passes the backend, from a protected route; null when not signed in.
async function whoami() {
  const response = await fetch(IDENTITY_URL, { headers: API_HEADERS, cache: "no-store" });
  if (response.status === 401) {
    return null;
  }
  if (!response.ok) {
    throw new Error(`${IDENTITY_URL} answered ${response.status}`);
  }
  return response.json();
}

// A new access cookie from the refresh cookie (which only /api/auth/ ever receives).
async function refresh() {
  const response = await fetch("/api/auth/refresh", {
    method: "POST",
    headers: { ...API_HEADERS, "Content-Type": "application/json" },
    body: "{}",
  });
  return response.ok;
}

function showSignedIn(identity, next) {
  $("login-form").hidden = true;
  $("session").hidden = false;
  $("user-id").textContent = identity.userId;
  $("roles").textContent = (identity.roles || []).join(", ") || "none";
  $("scopes").textContent = (identity.scopes || []).join(", ") || "none";
  $("continue").hidden = !next;
  if (next) {
    $("continue-link").href = next;
    $("continue-link").textContent = `Continue to ${next}`;
  }
  showStatus("You are signed in.");
}

function showSignedOut(message, isError = false) {
  $("session").hidden = true;
  $("login-form").hidden = false;
  $("password").value = "";
  showStatus(message, isError);
  $("username").focus();
}

async function signIn(event) {
  event.preventDefault();
  $("login").disabled = true;
  try {
    const response = await fetch("/api/auth/login", {
      method: "POST",
      headers: { ...API_HEADERS, "Content-Type": "application/json" },
      body: JSON.stringify({ username: $("username").value, password: $("password").value, cookie: true }),
    });
    if (response.status === 401) {
      showSignedOut("Invalid username or password.", true);
      return;
    }
    if (response.status === 429) {
      showSignedOut("Too many attempts: wait a moment and try again.", true);
      return;
    }
    if (!response.ok) {
      showSignedOut(`Sign-in failed (${response.status}).`, true);
      return;
    }
    // Only a session the gateway accepts is followed to `next`: never back and forth with it.
    const identity = await whoami();
    if (identity === null) {
      showSignedOut("Signed in, but the gateway refused the session.", true);
      return;
    }
    const next = nextUrl(window.location.search + window.location.hash, window.location.origin);
    if (next) {
      showStatus("Signed in: redirecting…");
      window.location.assign(next);
      return;
    }
    showSignedIn(identity, null);
  } catch (error) {
    showSignedOut("The gateway could not be reached.", true);
  } finally {
    $("login").disabled = false;
  }
}

async function signOut() {
  $("logout").disabled = true;
  try {
    // The cookies are the credential; the auth API checks this page's Origin and clears them.
    const response = await fetch("/api/auth/logout", { method: "POST", headers: API_HEADERS });
    if (response.status === 204 || response.status === 401) {
      showSignedOut("You are signed out.");
    } else {
      showStatus(`Sign-out failed (${response.status}).`, true);
    }
  } catch (error) {
    showStatus("The gateway could not be reached.", true);
  } finally {
    $("logout").disabled = false;
  }
}

async function start() {
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", signOut);
  const next = nextUrl(window.location.search + window.location.hash, window.location.origin);
  try {
    let identity = await whoami();
    if (identity === null && (await refresh())) {
      identity = await whoami();
    }
    if (identity === null) {
      showSignedOut("Sign in to continue.");
    } else {
      // Already signed in: offer `next` as a link rather than going there, so no redirect can loop.
      showSignedIn(identity, next);
    }
  } catch (error) {
    showSignedOut("The gateway could not be reached.", true);
  }
}

document.addEventListener("DOMContentLoaded", start);
