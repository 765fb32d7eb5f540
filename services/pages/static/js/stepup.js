// Step-up: a change that needs a recent sign-in (second factors, API keys, roles) answers 403
// `reauthentication-required`; this dialog asks for the password, an authenticator code or a
// passkey, POSTs /reauthenticate (a fresh token of the same session), and `call` then retries
// the change once. Cancelling leaves the change undone, its problem shown where it was asked.
import { call, onReauthenticationRequired, Problem, reauthenticate } from "./api.js";
import { el, formAlert, onSubmit } from "./ui.js";
import { ceremonyFailed, getAssertion, supported } from "./webauthn.js";

const KINDS = {
  password: { label: "Your password", autocomplete: "current-password", type: "password", other: "Use an authenticator code instead" },
  totp_code: { label: "Code from your authenticator app", autocomplete: "one-time-code", type: "text", other: "Use your password instead" },
};

function ask(problem) {
  return new Promise((resolve, reject) => {
    let kind = "password";
    const input = el("input", { id: "stepup-secret", name: "secret", required: true });
    const label = el("label", { for: "stepup-secret" });
    const swap = el("button", { type: "button", class: "secondary" });
    const cancel = el("button", { type: "button", class: "secondary" }, "Cancel");
    const form = el(
      "form",
      { id: "stepup-form", method: "dialog" },
      el("div", { class: "field" }, label, input),
      el("p", { class: "actions" }, el("button", { type: "submit" }, "Confirm"), swap, cancel),
    );
    const show = () => {
      const k = KINDS[kind];
      label.textContent = k.label;
      input.type = k.type;
      input.autocomplete = k.autocomplete;
      input.inputMode = kind === "totp_code" ? "numeric" : "text";
      input.value = "";
      swap.textContent = k.other;
    };
    show();
    const dialog = el(
      "dialog",
      { id: "stepup", "aria-labelledby": "stepup-title" },
      el("h2", { id: "stepup-title" }, "Confirm it is you"),
      el("p", {}, "This change needs a recent sign-in. Prove it is you again to go on."),
      form,
    );
    let settled = false;
    const done = (ok) => {
      settled = true;
      dialog.close();
      dialog.remove();
      if (ok) resolve();
      else reject(problem);
    };
    swap.addEventListener("click", () => {
      kind = kind === "password" ? "totp_code" : "password";
      show();
      input.focus();
    });
    cancel.addEventListener("click", () => done(false));
    dialog.addEventListener("close", () => settled || done(false)); // Escape
    onSubmit(form, async (values) => {
      await reauthenticate({ [kind]: values.secret });
      done(true);
    });
    if (supported()) {
      const passkey = el("button", { type: "button", class: "secondary" }, "Use a passkey");
      passkey.addEventListener("click", async () => {
        passkey.disabled = true;
        try {
          const credential = await getAssertion(await call("POST", "/api/v1/auth/reauthenticate/options"));
          await reauthenticate({ webauthn: credential });
          done(true);
        } catch (error) {
          form.querySelector(".alert")?.remove();
          formAlert(form, error instanceof Problem ? error.detail || error.title : ceremonyFailed(error));
        } finally {
          passkey.disabled = false;
        }
      });
      form.querySelector(".actions").append(passkey);
    }
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
}

onReauthenticationRequired(ask);
