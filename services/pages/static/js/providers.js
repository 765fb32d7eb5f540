// External providers on the pages: the "Continue with …" buttons (GET /providers; none shown
// when none are configured), and what a provider's callback put in the fragment
// (`#error=<reason>&provider=<id>`, `#linked=<id>`) turned into a message. Only the reasons
// below are ever shown, and a provider only by the name the API gives it: a crafted fragment
// puts no text of its own on the page.
import { auth } from "./api.js";
import { $, el } from "./ui.js";

const PREFIX = "/api/v1/auth/providers";
let listed = null;

/** The configured providers ([{id, name}]); [] when the list cannot be read. */
export function providers() {
  listed ||= auth("GET", "/providers").then((answer) => answer.items, () => []);
  return listed;
}

/** The fragment's outcome ({error, provider, linked}), removed from the address bar and the
 * history entry at once; null when the fragment holds none. */
export function takeOutcome() {
  const fields = new URLSearchParams(location.hash.slice(1));
  if (location.hash) history.replaceState(history.state, "", location.pathname + location.search);
  const outcome = { error: fields.get("error"), provider: fields.get("provider"), linked: fields.get("linked") };
  return outcome.error || outcome.linked ? outcome : null;
}

async function nameOf(id) {
  const found = (await providers()).find((p) => p.id === id);
  return found ? found.name : "the sign-in provider";
}

const UNVERIFIABLE = (name) => ({
  title: "We could not verify the answer",
  text: `The answer from ${name} could not be verified, so nothing happened. Try again, or sign in another way.`,
});

const MESSAGES = {
  state_missing: () => ({
    title: "This sign-in could not be finished",
    text: "Your browser did not bring back what it was given when the sign-in started (cookies may be blocked, or the sign-in was started in another browser). Start again from this page.",
  }),
  state_mismatch: () => ({
    title: "This sign-in could not be finished",
    text: "It was started in another browser or window. Start again from this page.",
  }),
  expired: () => ({
    title: "This sign-in attempt has expired",
    text: "It took too long, or it was already used. Start again from this page.",
  }),
  denied: (name) => ({
    title: "Sign-in cancelled",
    text: `You did not allow ${name} to share your details with BlockBot, so nothing happened. Try again, or choose another way.`,
  }),
  provider_error: (name) => ({
    title: `${name} could not finish the sign-in`,
    text: `${name} reported a problem. Try again, or choose another way.`,
  }),
  provider_unavailable: (name) => ({
    title: `${name} cannot be reached`,
    text: `${name} is not answering at the moment. Try again later, or choose another way.`,
  }),
  issuer_mismatch: UNVERIFIABLE,
  invalid_id_token: UNVERIFIABLE,
  invalid_response: UNVERIFIABLE,
  email_unverified: (name) => ({
    title: "Your email address is not verified",
    text: `${name} does not confirm that the email address of your account there is verified, so BlockBot cannot use it. Verify it with ${name}, or sign up with your email address.`,
  }),
  account_exists: (name) => ({
    title: "You already have an account",
    text: `An account already uses the email address of your ${name} account. For your safety they are not connected automatically: sign in the usual way (password or emailed link), then link ${name} from your account page.`,
  }),
  invitation_invalid: () => ({
    title: "This invitation no longer works",
    text: "It has expired, was revoked, or has already been used. Ask whoever invited you to send a new one.",
  }),
  invitation_email_mismatch: (name) => ({
    title: "Not the invited address",
    text: `Your ${name} account's email address is not the one the invitation was sent to. Open the invitation again and continue with the account of that address, or accept it with a password.`,
  }),
  sign_in_refused: () => ({
    title: "This account cannot sign in",
    text: "The account is disabled. Ask your organization's administrator.",
  }),
  session_ended: (name) => ({
    title: `${name} was not linked`,
    text: "Your session ended before linking finished. Sign in again, then link it.",
  }),
  identity_linked_elsewhere: (name) => ({
    title: `${name} was not linked`,
    text: `This ${name} account is already linked to another BlockBot account. Unlink it there, or use another ${name} account.`,
  }),
  provider_already_linked: (name) => ({
    title: `${name} was not linked`,
    text: `Your account already has a ${name} account linked. Unlink that one first to link another.`,
  }),
};

/** The message for a callback's error reason: {title, text}. */
export async function errorMessage(outcome) {
  const name = await nameOf(outcome.provider);
  const message = MESSAGES[outcome.error];
  if (message) return message(name);
  return { title: "This sign-in could not be finished", text: "Something went wrong. Start again from this page, or choose another way." };
}

/** An outcome shown right after `anchor` (an alert, or a notice for a link). */
export async function showOutcome(anchor, outcome) {
  const linked = !outcome.error;
  const message = linked
    ? { title: `${await nameOf(outcome.linked)} is linked`, text: "You can now sign in with it as well." }
    : await errorMessage(outcome);
  const box = el(
    "div",
    { class: linked ? "notice" : "alert", role: linked ? "status" : "alert", id: "provider-outcome" },
    el("p", {}, el("strong", {}, message.title)),
    el("p", {}, message.text),
  );
  anchor.after(box);
  return box;
}

/** "Continue with …" in `#providers`: links to each provider's start (a 302 there), or, with
 * `start(provider)`, buttons running it (an invitation POSTs its token first). */
export async function showButtons(start) {
  const holder = $("#providers");
  const items = await providers();
  if (!holder || !items.length) return;
  const status = el("p", { class: "error", "aria-live": "polite" });
  const controls = items.map((p) => {
    const label = `Continue with ${p.name}`;
    if (!start) return el("a", { class: "button provider", href: `${PREFIX}/${encodeURIComponent(p.id)}/start` }, label);
    const button = el("button", { type: "button", class: "secondary provider" }, label);
    button.addEventListener("click", async () => {
      status.textContent = "";
      button.disabled = true;
      try {
        await start(p);
      } catch (error) {
        status.textContent = error.detail || error.title || "Something went wrong. Try again.";
        button.disabled = false;
      }
    });
    return button;
  });
  holder.replaceChildren(el("p", { class: "or" }, "or"), el("div", { class: "providers" }, ...controls), status);
  holder.hidden = false;
}

/** Go to the provider with an authorization URL the API gave (link, invitation). */
export function toProvider(answer) {
  location.assign(answer.authorization_url);
}
