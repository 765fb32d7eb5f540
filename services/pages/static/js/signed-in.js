// What the signed-in pages (/account, /org) share: the session restored from the refresh
// cookie (or off to sign in), the header (who, which org, sign out), and the end of a
// session under the page (revoked from another tab or device) shown as signed out.
import { call, onSignedOut, restore, session, signOut } from "./api.js";
import { $, el, showPage } from "./ui.js";
import "./stepup.js"; // a change needing a recent sign-in asks for it

export const MANAGERS = ["owner", "admin"];

function signInHref() {
  return `/auth/sign-in?next=${encodeURIComponent(location.pathname)}`;
}

function showSignedOut() {
  document.querySelector("header nav")?.remove();
  showPage(
    "You have been signed out",
    "This session has ended: it was signed out here or from another device. Sign in to continue.",
    el("a", { class: "button", href: signInHref() }, "Sign in"),
  );
}

function header(current) {
  const out = el("button", { type: "button", class: "secondary" }, "Sign out");
  out.addEventListener("click", async () => {
    out.disabled = true;
    try {
      await signOut();
    } finally {
      location.assign("/auth/sign-in");
    }
  });
  const links = [el("a", { href: "/account" }, "Account")];
  if (MANAGERS.includes(current.user.role)) links.push(el("a", { href: "/org" }, "Organization"));
  for (const link of links) if (link.getAttribute("href") === location.pathname) link.setAttribute("aria-current", "page");
  $("header").append(
    el(
      "nav",
      { "aria-label": "Account" },
      el("span", { class: "muted" }, current.user.email, " · ", el("span", { id: "org-name" }, current.org.name)),
      ...links,
      out,
    ),
  );
}

/** The signed-in user ({user, org}), or a redirect to sign in (the promise then never settles). */
export async function requireSession() {
  const current = session() || (await restore());
  if (!current) {
    location.replace(signInHref());
    return new Promise(() => {});
  }
  header(current);
  onSignedOut(showSignedOut);
  // A tab coming back into view checks that its session still lives.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") call("GET", "/api/v1/me").catch(() => {});
  });
  return current;
}

/** Run each section module's `mount(section, current)`: a section's failure shows in it.
 * `<main>` is busy meanwhile; `<body data-ready>` says when every section is filled in. */
export async function mountSections(current, sections) {
  const main = $("main");
  main.setAttribute("aria-busy", "true");
  for (const [id, mount] of sections) {
    const section = document.getElementById(id);
    try {
      await mount(section, current);
    } catch (error) {
      section.append(el("p", { class: "alert", role: "alert" }, error.detail || error.message));
    }
  }
  main.removeAttribute("aria-busy");
  document.body.dataset.ready = "true";
}
