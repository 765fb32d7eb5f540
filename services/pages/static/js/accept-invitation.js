// /auth/accept-invitation#token=…: POST /invitations/accept {token, name, password} creates
// the member and signs in (201). An address that already has an account is a 409: sign in.
// "Continue with …" a provider POSTs the token to its start (kept out of URLs) and goes there.
import { auth } from "./api.js";
import { showButtons, toProvider } from "./providers.js";
import { continueSignIn } from "./steps.js";
import "./second-factor-step.js";
import { $, el, onSubmit, showLinkFailed, showPage, takeLinkToken } from "./ui.js";

const token = takeLinkToken();

if (!token) {
  showLinkFailed("invitation", "/auth/sign-in", "Sign in");
} else {
  showButtons(async (provider) =>
    toProvider(await auth("POST", `/providers/${encodeURIComponent(provider.id)}/start`, { invitation_token: token })),
  );
  onSubmit(
    $("#accept"),
    async (form) => continueSignIn(auth("POST", "/invitations/accept", { token, ...form })),
    (problem) => {
      if (problem.kind === "invalid-token") {
        showPage(
          "This invitation no longer works",
          "It has expired, was revoked, or has already been used. Ask whoever invited you to send a new one.",
          el("a", { href: "/auth/sign-in" }, "Sign in"),
        );
        return true;
      }
      if (problem.kind === "conflict") {
        showPage(
          "You already have an account",
          "An account already exists for this email address: an address belongs to one organization. Sign in with it, or ask to be invited at another address.",
          el("a", { class: "button", href: "/auth/sign-in" }, "Sign in"),
        );
        return true;
      }
      return false;
    },
  );
}
