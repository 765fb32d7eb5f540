// /auth/sign-up: POST /api/v1/auth/register, then "check your email" (the same answer for
// every address: the API never says whether one has an account); or "Continue with …" a
// provider.
import { auth } from "./api.js";
import { showButtons } from "./providers.js";
import { $, el, onSubmit, showPage } from "./ui.js";

onSubmit($("#sign-up"), async (form) => {
  await auth("POST", "/register", form);
  showPage(
    "Check your email",
    `If ${form.email} can receive mail, a link to verify it is on its way. Open it in this browser and enter your password to finish.`,
    el("a", { href: "/auth/sign-in" }, "Back to sign in"),
  );
});

showButtons();
