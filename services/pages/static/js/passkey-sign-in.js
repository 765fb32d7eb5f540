// Passwordless sign-in with a discoverable passkey: POST /passkeys/options, the browser's
// ceremony, POST /passkeys/authenticate (a token response). Offered in the email field's
// autofill where the browser supports conditional mediation, and by a button everywhere.
import { auth } from "./api.js";
import { finish } from "./steps.js";
import { $, formAlert, onSubmit } from "./ui.js";
import { ceremonyFailed, getAssertion, supported } from "./webauthn.js";

let autofill = null; // {controller, done} of the pending conditional request

async function signIn(mediation, signal) {
  const options = await auth("POST", "/passkeys/options");
  const credential = await getAssertion(options, { mediation, signal });
  finish(await auth("POST", "/passkeys/authenticate", { credential }));
}

function offerInAutofill() {
  const controller = new AbortController();
  const done = signIn("conditional", controller.signal).catch(() => {
    // Aborted for the button, or nothing chosen: the password form stays as it was.
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
      await signIn(undefined, undefined);
    } catch (error) {
      if (error instanceof DOMException) formAlert(form, ceremonyFailed(error));
      else throw error;
    }
  });
  if (await PublicKeyCredential.isConditionalMediationAvailable?.()) offerInAutofill();
}
