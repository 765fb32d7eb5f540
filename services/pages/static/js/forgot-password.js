// /auth/forgot-password: POST /password/forgot (always 202: no account enumeration).
import { auth } from "./api.js";
import { $, el, onSubmit, showPage } from "./ui.js";

onSubmit($("#forgot"), async (form) => {
  await auth("POST", "/password/forgot", form);
  showPage(
    "Check your email",
    `If ${form.email} has an account, a link to choose a new password is on its way.`,
    el("a", { href: "/auth/sign-in" }, "Back to sign in"),
  );
});
