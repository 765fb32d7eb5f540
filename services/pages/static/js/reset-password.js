// /auth/reset-password#token=…: POST /password/reset {token, password} (204; every session
// of the account ends), then sign in with the new password.
import { auth } from "./api.js";
import { $, el, onSubmit, showLinkFailed, showPage, takeLinkToken } from "./ui.js";

const token = takeLinkToken();

if (!token) {
  showLinkFailed("password", "/auth/forgot-password", "Email me a new link");
} else {
  onSubmit(
    $("#reset"),
    async (form) => {
      await auth("POST", "/password/reset", { token, password: form.password });
      showPage(
        "Password changed",
        "Your new password is set, and every session of your account has been signed out.",
        el("a", { class: "button", href: "/auth/sign-in" }, "Sign in"),
      );
    },
    (problem) => {
      if (problem.kind !== "invalid-token") return false;
      showLinkFailed("password", "/auth/forgot-password", "Email me a new link");
      return true;
    },
  );
}
