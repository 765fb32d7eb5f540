// /auth/sign-in: a password, or "email me a link" (POST /magic-link, always 202), or "Continue
// with …" a provider, whose failures come back here in the fragment (#error=…&provider=…).
import { auth, restore } from "./api.js";
import { showButtons, showOutcome, takeOutcome } from "./providers.js";
import { continueSignIn } from "./steps.js";
import "./second-factor-step.js";
import { offerPasskeys, stopAutofill } from "./passkey-sign-in.js";
import { $, el, nextPath, onSubmit, showPage } from "./ui.js";

const outcome = takeOutcome();
if (outcome) showOutcome($("main h1"), outcome);
showButtons();

onSubmit($("#password-sign-in"), async (form) => {
  await stopAutofill(); // its second factor may need the browser's one WebAuthn request
  await continueSignIn(auth("POST", "/login", form));
});

onSubmit($("#magic-link"), async (form) => {
  await auth("POST", "/magic-link", form);
  showPage(
    "Check your email",
    `If ${form.email} has an account, a sign-in link is on its way. It works once, for a few minutes.`,
    el("a", { href: "/auth/sign-in" }, "Back to sign in"),
  );
});

// Already signed in (the refresh cookie still holds a session): go on; else offer passkeys.
restore().then((current) => {
  if (current) location.replace(nextPath());
  else offerPasskeys();
}, () => offerPasskeys());
