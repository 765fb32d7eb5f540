// /auth/verify-email#token=…: POST /email/verify {token, password} (the sign-up's password,
// as the contract requires); it signs in. A wrong password or a dead link is the same 400
// `invalid-token`: the form stays, with a way to get a new link.
import { auth } from "./api.js";
import { continueSignIn } from "./steps.js";
import "./second-factor-step.js";
import { $, el, formAlert, onSubmit, showPage, takeLinkToken } from "./ui.js";

const token = takeLinkToken();
const resend = $("#resend");

if (!token) {
  showPage(
    "Open the link from your email",
    "This page verifies an address from the link in the email we sent. Sign up again to get a new one.",
    el("a", { class: "button", href: "/auth/sign-up" }, "Sign up"),
  );
} else {
  onSubmit(
    $("#verify"),
    async (form) => continueSignIn(auth("POST", "/email/verify", { token, password: form.password })),
    (problem, form) => {
      if (problem.kind !== "invalid-token") return false;
      formAlert(
        form,
        "That did not work: either the password is not the one chosen at sign-up, or this link has expired or was already used. Try the password again, or send a new link.",
      );
      resend.hidden = false;
      form.querySelector("input").focus();
      return true;
    },
  );
}

onSubmit(resend, async (form) => {
  await auth("POST", "/email/verify-request", form);
  showPage(
    "Check your email",
    `If ${form.email} has a sign-up waiting, a new link is on its way.`,
    el("a", { href: "/auth/sign-in" }, "Back to sign in"),
  );
});
