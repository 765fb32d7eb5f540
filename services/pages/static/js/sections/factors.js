// Account: second factors (GET /api/v1/auth/factors). An authenticator app (POST
// /factors/totp shows a QR code and the key; /factors/totp/enable turns it on with a code;
// DELETE removes it), recovery codes (shown once, with copy and download; POST
// /factors/recovery-codes makes a new set), passkeys (POST /factors/passkeys/options, the
// browser's ceremony, POST /factors/passkeys with a name; DELETE one). Changes need a recent
// sign-in: `call` asks for it (stepup.js).
import { call } from "../api.js";
import { $, act, el, onSubmit, statusLine, when } from "../ui.js";
import { ceremonyFailed, createCredential, supported } from "../webauthn.js";

const FACTORS = "/api/v1/auth/factors";

// The QR code arrives as SVG markup. It is shown inline, parsed by DOMParser (an inert document:
// nothing in it runs or loads) and imported only when every element and attribute is on the
// short list a QR code needs: the page's CSP stays exactly as strict as everywhere else (no
// `img-src data:`), and markup that is anything more than a drawing is refused, not shown.
const SVG_ELEMENTS = new Set(["svg", "title", "desc", "path", "rect", "g"]);
const SVG_ATTRIBUTES = new Set(["width", "height", "viewBox", "class", "d", "fill", "stroke", "transform", "role", "aria-label", "xmlns", "x", "y"]);

export function qrCode(markup) {
  const parsed = new DOMParser().parseFromString(markup, "text/html");
  const svg = parsed.body.firstElementChild;
  if (!(svg instanceof SVGSVGElement) || parsed.body.children.length !== 1) return null;
  for (const node of [svg, ...svg.querySelectorAll("*")]) {
    if (!SVG_ELEMENTS.has(node.localName)) return null;
    if ([...node.attributes].some((a) => !SVG_ATTRIBUTES.has(a.name))) return null;
  }
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code of the authenticator app key");
  return document.importNode(svg, true);
}

export async function mount(section) {
  const status = statusLine(section);
  const totpState = $("#totp-state", section);
  const start = $("#totp-start", section);
  const disable = $("#totp-disable", section);
  const enrol = $("#totp-enrol", section);
  const totpForm = $("#totp-form", section);
  const recoveryState = $("#recovery-state", section);
  const codesBox = $("#recovery-codes", section);
  const codesList = $("#recovery-list", section);
  const copyState = $("#recovery-copy-state", section);
  const regenerate = $("#recovery-regenerate", section);
  const passkeys = $("#passkeys tbody", section);
  const passkeyForm = $("#passkey-form", section);
  const required = $("#second-factor-required", section);

  function showCodes(codes) {
    if (!codes) return;
    codesList.textContent = codes.join("\n");
    copyState.textContent = "";
    codesBox.hidden = false;
    $("#recovery-copy", section).focus();
  }

  async function load() {
    const factors = await call("GET", FACTORS);
    const any = factors.totp_enabled || factors.passkeys.length > 0;
    const asked = new URLSearchParams(location.search).get("enrol") === "second-factor";
    required.hidden = any || !(asked || factors.org_requires_second_factor);
    totpState.textContent = factors.totp_enabled ? "On: sign-ins ask for a code from your app." : "Off.";
    start.hidden = factors.totp_enabled || !enrol.hidden;
    disable.hidden = !factors.totp_enabled;
    recoveryState.textContent = any
      ? `${factors.recovery_codes_remaining} of 10 recovery codes left. Each works once, when your app or passkey is not at hand.`
      : "Recovery codes come with your first authenticator app or passkey.";
    regenerate.hidden = !any;
    passkeys.replaceChildren(
      ...factors.passkeys.map((key) => {
        const remove = el("button", { type: "button", class: "danger", "aria-label": `Remove the passkey ${key.name}` }, "Remove");
        remove.addEventListener("click", () =>
          act(remove, status, async () => {
            await call("DELETE", `${FACTORS}/passkeys/${key.id}`);
            await load();
          }),
        );
        return el(
          "tr",
          { "data-passkey": key.id },
          el("td", {}, key.name, el("br"), el("span", { class: "muted" }, key.synced ? "synced" : "this device")),
          el("td", {}, when(key.last_used_at) || "never"),
          el("td", {}, remove),
        );
      }),
    );
    if (!factors.passkeys.length) passkeys.append(el("tr", {}, el("td", { colspan: "3", class: "muted" }, "No passkey yet.")));
  }

  start.addEventListener("click", () =>
    act(start, status, async () => {
      const enrolment = await call("POST", `${FACTORS}/totp`);
      const qr = qrCode(enrolment.qr_svg);
      $("#totp-qr", section).replaceChildren(qr || el("span", { class: "muted" }, "(QR code unavailable: type the key)"));
      $("#totp-secret", section).textContent = enrolment.secret;
      enrol.hidden = false;
      start.hidden = true;
      totpForm.querySelector("input").focus();
    }),
  );
  onSubmit(totpForm, async (values) => {
    const answer = await call("POST", `${FACTORS}/totp/enable`, { code: values.code });
    totpForm.reset();
    enrol.hidden = true;
    status.textContent = "";
    await load();
    showCodes(answer.recovery_codes);
  });
  $("#totp-cancel", section).addEventListener("click", async () => {
    enrol.hidden = true;
    await load();
    start.focus();
  });
  disable.addEventListener("click", () =>
    act(disable, status, async () => {
      await call("DELETE", `${FACTORS}/totp`);
      await load();
      start.focus();
    }),
  );

  regenerate.addEventListener("click", () =>
    act(regenerate, status, async () => {
      const answer = await call("POST", `${FACTORS}/recovery-codes`);
      await load();
      showCodes(answer.recovery_codes);
    }),
  );
  $("#recovery-copy", section).addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(codesList.textContent);
      copyState.textContent = "Copied.";
    } catch {
      getSelection().selectAllChildren(codesList);
      copyState.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  });
  $("#recovery-download", section).addEventListener("click", () => {
    const file = new Blob([`BlockBot recovery codes (each works once)\n\n${codesList.textContent}\n`], { type: "text/plain" });
    const url = URL.createObjectURL(file);
    el("a", { href: url, download: "blockbot-recovery-codes.txt" }).click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  });

  if (!supported()) {
    passkeyForm.replaceChildren(el("p", { class: "muted" }, "This browser cannot create passkeys."));
  } else {
    onSubmit(passkeyForm, async (values) => {
      const options = await call("POST", `${FACTORS}/passkeys/options`);
      let credential;
      try {
        credential = await createCredential(options);
      } catch (error) {
        status.textContent = ceremonyFailed(error);
        return;
      }
      const answer = await call("POST", `${FACTORS}/passkeys`, { name: values.name, credential });
      passkeyForm.reset();
      status.textContent = "";
      await load();
      showCodes(answer.recovery_codes);
    });
  }
  await load();
}
