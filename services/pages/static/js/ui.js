// What every page does the same way: build elements (user text always as text, never HTML),
// read the token of an emailed link, submit a form to the API and show its problem: field
// errors beside their field, a rate limit with its wait, anything else above the form.
import { Problem } from "./api.js";

export const $ = (selector, root = document) => root.querySelector(selector);

/** A new element: `el("a", {href: "/org"}, "Organization")`. Children that are strings become
 * text nodes, so a name like `<img src=x>` shows as those characters. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** The `#token=` of an emailed link, removed from the address bar and the history entry
 * before the page makes any request (it never reaches a log, a Referer or the history). */
export function takeLinkToken() {
  return takeFragment().get("token");
}

/** The page's `#fragment` parameters, removed from the address bar and history first. */
export function takeFragment() {
  const found = new URLSearchParams(location.hash.slice(1));
  if (location.hash) history.replaceState(history.state, "", location.pathname + location.search);
  return found;
}

/** Replace the page's main content with a message and its next steps (links or buttons). */
export function showPage(title, message, ...actions) {
  const main = $("main");
  const heading = el("h1", { tabindex: "-1" }, title);
  main.replaceChildren(
    el("div", { class: "card", role: "status" }, heading, el("p", {}, message), el("p", { class: "actions" }, ...actions)),
  );
  heading.focus();
}

/** The used/expired link page: what happened and the one next step. */
export function showLinkFailed(what, nextHref, nextLabel) {
  showPage(
    "This link no longer works",
    `This ${what} link has expired or has already been used. Links work once, for a limited time.`,
    el("a", { class: "button", href: nextHref }, nextLabel),
  );
}

function waitText(seconds) {
  if (!seconds) return "Too many attempts. Wait a moment, then try again.";
  if (seconds < 90) return `Too many attempts. Try again in ${seconds} seconds.`;
  return `Too many attempts. Try again in ${Math.ceil(seconds / 60)} minutes.`;
}

export function clearErrors(form) {
  form.querySelectorAll(".error, .alert").forEach((node) => node.remove());
  form.querySelectorAll("[aria-invalid]").forEach((node) => {
    node.removeAttribute("aria-invalid");
    node.removeAttribute("aria-describedby");
  });
}

/** An error above the form's fields (role=alert: read out at once). */
export function formAlert(form, text) {
  const alert = el("p", { class: "alert", role: "alert" }, text);
  form.prepend(alert);
  return alert;
}

/** Show a Problem on `form`: each 422 item beside the field it names, a 429 with its wait
 * (the submit button stays disabled that long), anything else above the form. */
export function showProblem(form, problem) {
  clearErrors(form);
  let placed = 0;
  for (const item of problem.errors) {
    const name = (item.loc || []).at(-1);
    const named = name && form.elements.namedItem(name);
    // A group of checkboxes is one field: its <fieldset>.
    const input = named instanceof RadioNodeList ? named[0]?.closest("fieldset") : named;
    if (!input) continue;
    const id = `${form.id}-${name}-error`;
    if (document.getElementById(id)) continue;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
    (input.closest(".field") || input).append(el("p", { class: "error", id }, item.msg || "Invalid value"));
    placed += 1;
  }
  if (placed) {
    const first = form.querySelector("[aria-invalid=true]");
    (first.matches("fieldset") ? first.querySelector("input") : first).focus();
    return;
  }
  if (problem.status === 429) {
    formAlert(form, waitText(problem.retryAfter));
    const button = form.querySelector("button[type=submit], button:not([type])");
    if (button && problem.retryAfter) {
      button.disabled = true;
      setTimeout(() => { button.disabled = false; }, problem.retryAfter * 1000);
    }
    return;
  }
  formAlert(form, problem.detail || problem.title);
}

/** A line where a section's actions report a problem (read out politely). */
export function statusLine(section) {
  const line = el("p", { class: "error", "aria-live": "polite" });
  section.append(line);
  return line;
}

/** Run a control's action (`await fn()`): disabled meanwhile, a Problem shown in `status`
 * (a `statusLine`) instead of being lost. */
export async function act(button, status, fn) {
  status.textContent = "";
  button.disabled = true;
  try {
    await fn();
  } catch (error) {
    if (!(error instanceof Problem)) throw error;
    status.textContent = error.status === 429 ? waitText(error.retryAfter) : error.detail || error.title;
  } finally {
    button.disabled = false;
  }
}

/** The form's fields as an object (checkbox groups as arrays of their checked values). */
export function values(form) {
  const data = {};
  for (const [name, value] of new FormData(form)) {
    const field = form.elements.namedItem(name);
    const many = field instanceof RadioNodeList ? field[0].type === "checkbox" : field.type === "checkbox";
    if (many) (data[name] ||= []).push(value);
    else data[name] = typeof value === "string" ? value : "";
  }
  return data;
}

/** Submit `form` to `handler(values, form)`: the button is disabled meanwhile, a Problem is
 * shown on the form (`problemHandler` may take it first and return true). */
export function onSubmit(form, handler, problemHandler = () => false) {
  form.noValidate = true; // the API is the one judge; its errors are shown beside the fields
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const button = form.querySelector("button[type=submit], button:not([type])");
    if (button) button.disabled = true;
    form.setAttribute("aria-busy", "true");
    let limited = false;
    try {
      await handler(values(form), form);
    } catch (error) {
      if (!(error instanceof Problem)) throw error;
      if (!problemHandler(error, form)) showProblem(form, error);
      limited = error.status === 429 && Boolean(error.retryAfter);
    } finally {
      form.removeAttribute("aria-busy");
      if (button && !limited) button.disabled = false;
    }
  });
}

/** Where to go after signing in: a same-origin `?next=` path, else the account page. */
export function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/account";
}

/** A date-time of the API, shown in the reader's locale. */
export function when(value) {
  return value ? new Date(value).toLocaleString() : "";
}
