// /auth/magic#token=…: opening the page consumes nothing (mail scanners open links); the
// button POSTs /magic-link/verify. A used or expired link is a clear page with the next step.
import { auth } from "./api.js";
import { continueSignIn } from "./steps.js";
import "./second-factor-step.js";
import { $, el, onSubmit, showLinkFailed, showPage, takeLinkToken } from "./ui.js";

const token = takeLinkToken();

if (!token) {
  showPage("Open the link from your email", "This page signs you in from the link we emailed.", el("a", { class: "button", href: "/auth/sign-in" }, "Sign in"));
} else {
  onSubmit(
    $("#magic"),
    async () => continueSignIn(auth("POST", "/magic-link/verify", { token })),
    (problem) => {
      if (problem.kind !== "invalid-token") return false;
      showLinkFailed("sign-in", "/auth/sign-in", "Email me a new link");
      return true;
    },
  );
}
