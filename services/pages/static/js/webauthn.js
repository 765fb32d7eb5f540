// Passkeys in the browser: the API speaks WebAuthn options and credentials as JSON with
// base64url for every binary field (py_webauthn's format); navigator.credentials speaks
// ArrayBuffers. These convert both ways, and nothing else.

export const supported = () => typeof PublicKeyCredential === "function" && Boolean(navigator.credentials);

export function fromBase64url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
}

export function toBase64url(buffer) {
  let text = "";
  for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const descriptors = (list) => (list || []).map((item) => ({ ...item, id: fromBase64url(item.id) }));

/** A passkey assertion for PublicKeyCredentialRequestOptions (JSON), as JSON for the API.
 * `mediation: "conditional"` offers the passkeys in the username field's autofill. */
export async function getAssertion(options, { mediation, signal } = {}) {
  const publicKey = {
    ...options,
    challenge: fromBase64url(options.challenge),
    allowCredentials: descriptors(options.allowCredentials),
  };
  const credential = await navigator.credentials.get({ publicKey, mediation, signal });
  const { response } = credential;
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      authenticatorData: toBase64url(response.authenticatorData),
      signature: toBase64url(response.signature),
      userHandle: response.userHandle ? toBase64url(response.userHandle) : undefined,
    },
  };
}

/** A new passkey for PublicKeyCredentialCreationOptions (JSON), as JSON for the API. */
export async function createCredential(options) {
  const publicKey = {
    ...options,
    challenge: fromBase64url(options.challenge),
    user: { ...options.user, id: fromBase64url(options.user.id) },
    excludeCredentials: descriptors(options.excludeCredentials),
  };
  const credential = await navigator.credentials.create({ publicKey });
  const { response } = credential;
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      attestationObject: toBase64url(response.attestationObject),
      transports: typeof response.getTransports === "function" ? response.getTransports() : [],
    },
  };
}

/** The words for a ceremony that did not complete (cancelled, timed out, no passkey here). */
export function ceremonyFailed(error) {
  if (error && error.name === "InvalidStateError") return "This passkey is registered already.";
  return "The passkey was not used: it was cancelled, timed out, or none is available on this device.";
}
