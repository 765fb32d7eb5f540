// Passwordless sign-in with a discoverable passkey: POST /passkeys/options, the browser's
// ceremony, POST /passkeys/authenticate (a token response). Offered in the email field's
// autofill where the browser supports conditional mediation, and by a button everywhere.
import { auth, Problem } from "./api.js";
import { finish } from "./steps.js";
import { $, clearErrors, formAlert, onSubmit } from "./ui.js";
import { ceremonyFailed, getAssertion, supported } from "./webauthn.js";

let autofill = null; // {controller, done} of the pending conditional request

async function signIn() {
  const options = await auth("POST", "/passkeys/options");
  const credential = await getAssertion(options);
  finish(await auth("POST", "/passkeys/authenticate", { credential }));
}

function offerInAutofill() {
  const controller = new AbortController();
  let chosen = false;
  const done = (async () => {
    const options = await auth("POST", "/passkeys/options");
    const credential = await getAssertion(options, { mediation: "conditional", signal: controller.signal });
    chosen = true;
    finish(await auth("POST", "/passkeys/authenticate", { credential }));
  })().catch((error) => {
    // Aborted (for the button or the password form), or no options: the form stays as it was.
    // A passkey chosen but refused (its challenge expired meanwhile, a removed passkey...):
    // say so, and offer the passkeys again (each retry is the person's own choice).
    if (!chosen || !(error instanceof Problem)) return;
    const form = $("#password-sign-in");
    clearErrors(form);
    formAlert(form, error.detail || error.title);
    if (error.status !== 429 && autofill && autofill.controller === controller) offerInAutofill();
  });
  autofill = { controller, done };
}

export async function stopAutofill() {
  if (!autofill) return;
  const { controller, done } = autofill;
  autofill = null;
  controller.abort();
  await done; // one WebAuthn request at a time: the aborted one settles first
}

export async function offerPasskeys() {
  if (!supported()) return;
  const form = $("#passkey-sign-in");
  form.hidden = false;
  onSubmit(form, async () => {
    await stopAutofill();
    try {
      await signIn();
    } catch (error) {
      if (error instanceof DOMException) formAlert(form, ceremonyFailed(error));
      else throw error;
    }
  });
  if (await PublicKeyCredential.isConditionalMediationAvailable?.()) offerInAutofill();
}
