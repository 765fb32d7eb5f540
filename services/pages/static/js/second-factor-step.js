// The second-factor step of every sign-in: a first factor of an account with TOTP or a passkey
// answers 401 `second-factor-challenge` (its `challenge`, `methods`, `webauthn` options);
// this step asks for one of them and POSTs /second-factor, which answers tokens. A spent or
// expired challenge means starting the sign-in again.
import { auth } from "./api.js";
import { registerStep } from "./steps.js";
import { clearErrors, el, formAlert, onSubmit, showPage } from "./ui.js";
import { ceremonyFailed, getAssertion, supported } from "./webauthn.js";

function field(id, label, attributes) {
  return el("div", { class: "field" }, el("label", { for: id }, label), el("input", { id, required: true, autocomplete: "off", spellcheck: "false", ...attributes }));
}

function expired(problem) {
  if (problem.kind !== "invalid-second-factor-challenge") return false;
  showPage(
    "Sign in again",
    "This sign-in has expired or had too many attempts. Start again from the sign-in page.",
    el("a", { class: "button", href: "/auth/sign-in" }, "Sign in"),
  );
  return true;
}

export function secondFactor(answer, finish) {
  const methods = answer.methods || [];
  const finishWith = async (proof) => finish(await auth("POST", "/second-factor", { challenge: answer.challenge, ...proof }));
  const heading = el("h1", { tabindex: "-1" }, "Confirm it is you");
  const parts = [heading, el("p", {}, "Your account has a second factor. Use it to finish signing in.")];

  if (methods.includes("webauthn") && answer.webauthn && supported()) {
    const passkey = el("form", { id: "second-factor-passkey", class: "card" }, el("p", { class: "actions" }, el("button", { type: "submit" }, "Use a passkey")));
    onSubmit(passkey, async () => {
      let credential;
      try {
        credential = await getAssertion(answer.webauthn);
      } catch (error) {
        formAlert(passkey, ceremonyFailed(error));
        return;
      }
      await finishWith({ webauthn: credential });
    }, expired);
    parts.push(passkey);
  }

  let code = null;
  if (methods.includes("totp")) {
    code = el(
      "form",
      { id: "second-factor-code", class: "card" },
      field("totp_code", "Code from your authenticator app", { name: "totp_code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: "32" }),
      el("p", { class: "actions" }, el("button", { type: "submit" }, "Continue")),
    );
    onSubmit(code, (values) => finishWith({ totp_code: values.totp_code }), expired);
    parts.push(code);
  }

  if (methods.includes("recovery_code")) {
    const recovery = el(
      "form",
      { id: "second-factor-recovery", class: "card" },
      field("recovery_code", "Recovery code", { name: "recovery_code", maxlength: "32" }),
      el("p", { class: "actions" }, el("button", { type: "submit" }, "Use this recovery code")),
    );
    onSubmit(recovery, (values) => finishWith({ recovery_code: values.recovery_code }), expired);
    if (parts.length > 2) {
      // Offered on request: a recovery code is for when the usual factor is lost.
      recovery.hidden = true;
      const show = el("button", { type: "button", class: "secondary" }, "Use a recovery code instead");
      show.addEventListener("click", () => {
        recovery.hidden = false;
        show.remove();
        clearErrors(recovery);
        recovery.querySelector("input").focus();
      });
      parts.push(el("p", { class: "actions" }, show));
    }
    parts.push(recovery);
  }
  parts.push(el("p", {}, el("a", { href: "/auth/sign-in" }, "Start again")));
  document.querySelector("main").replaceChildren(...parts);
  (code ? code.querySelector("input") : heading).focus();
}

registerStep("second-factor-challenge", secondFactor);
