// The one client of the public REST API (docs/api.md) every page uses: JSON in and out, every
// error a Problem read from problem+json, the access token in memory only (never stored), a
// page's session restored from the httpOnly refresh cookie.
const AUTH = "/api/v1/auth";

let accessToken = null;
let current = null; // {user, org} of the last token response
const signedOutListeners = [];
let askToReauthenticate = null;

export class Problem extends Error {
  constructor(status, body, retryAfter) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.status = status;
    // The kind (docs/problems.md): the last segment of `type`.
    this.kind = String(body.type || "").split("/").pop();
    this.title = body.title || "Something went wrong";
    this.detail = body.detail || "";
    this.errors = Array.isArray(body.errors) ? body.errors : [];
    this.retryAfter = retryAfter;
    this.body = body; // the problem's own fields (a second-factor challenge's `challenge`...)
  }
}

const OFFLINE = {
  type: "network",
  title: "No connection",
  detail: "The server could not be reached. Check your connection and try again.",
};

async function send(method, path, body, token) {
  const headers = { Accept: "application/json, application/problem+json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new Problem(0, OFFLINE, null);
  }
  const text = response.status === 204 ? "" : await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = {};
  }
  if (!response.ok) {
    const wait = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    throw new Problem(response.status, data, Number.isFinite(wait) ? wait : null);
  }
  return data;
}

/** An unauthenticated call of the auth service: `auth("POST", "/login", {...})`. */
export function auth(method, path, body) {
  return send(method, AUTH + path, body, null);
}

/** Keep a token response's access token (in memory) and who it signs in. */
export function signedIn(tokens) {
  accessToken = tokens.access_token;
  current = { user: tokens.user, org: tokens.org };
  return current;
}

export function session() {
  return current;
}

/** The session of the refresh cookie, or null when there is none (signed out). */
export async function restore() {
  try {
    return signedIn(await send("POST", `${AUTH}/refresh`, undefined, null));
  } catch (problem) {
    // No cookie, or its session ended: signed out (`call` tells the listeners).
    if (problem instanceof Problem && (problem.status === 401 || problem.kind === "invalid-token")) return null;
    throw problem;
  }
}

/** Called once when the session ends under the page (revoked elsewhere, expired). */
export function onSignedOut(listener) {
  signedOutListeners.push(listener);
}

function endSession() {
  const wasSignedIn = accessToken !== null;
  accessToken = null;
  current = null;
  if (wasSignedIn) signedOutListeners.forEach((listener) => listener());
}

/** Who answers a 403 `reauthentication-required` (step-up): `ask(problem)` resolves once
 * `reauthenticate` succeeded, or rejects (the person cancelled). */
export function onReauthenticationRequired(ask) {
  askToReauthenticate = ask;
}

/** POST /reauthenticate ({password} | {totp_code} | {webauthn}): a fresh access token of
 * this session, recent enough for step-up. */
export async function reauthenticate(proof) {
  const fresh = await send("POST", `${AUTH}/reauthenticate`, proof, accessToken);
  accessToken = fresh.access_token;
}

async function authorized(method, path, body) {
  try {
    return await send(method, path, body, accessToken);
  } catch (problem) {
    if (!(problem instanceof Problem) || problem.status !== 401) throw problem;
    if ((await restore()) === null) {
      endSession();
      throw problem;
    }
    return send(method, path, body, accessToken);
  }
}

/** An authenticated call (`call("GET", "/api/v1/me")`): a 401 refreshes once and retries; a
 * step-up demand asks the person to prove it is them, then retries once. */
export async function call(method, path, body) {
  if (accessToken === null && (await restore()) === null) {
    throw new Problem(401, { type: "unauthorized", title: "Signed out", detail: "Sign in again." }, null);
  }
  try {
    return await authorized(method, path, body);
  } catch (problem) {
    if (!(problem instanceof Problem) || problem.kind !== "reauthentication-required" || !askToReauthenticate) throw problem;
    await askToReauthenticate(problem);
    return send(method, path, body, accessToken);
  }
}

/** Revoke this session and clear the cookie. */
export async function signOut() {
  try {
    await send("POST", `${AUTH}/logout`, undefined, null);
  } finally {
    accessToken = null;
    current = null;
  }
}
