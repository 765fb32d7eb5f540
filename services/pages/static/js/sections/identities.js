// Account: linked sign-in providers (GET /api/v1/auth/identities); link one (POST
// /providers/{id}/link, then off to the provider, back at /account#linked=<id> or #error=…);
// unlink one (DELETE /identities/{id}; 409 last-sign-in-method when it is the last way in).
// Linking needs a recent sign-in: `call` answers a 403 reauthentication-required with the
// step-up dialog (stepup.js) and retries the link once.
import { call, Problem } from "../api.js";
import { providers, showOutcome, takeOutcome, toProvider } from "../providers.js";
import { $, act, el, statusLine, when } from "../ui.js";

// Read at once, before the page's first request: the fragment leaves the address bar.
const outcome = takeOutcome();

const LAST_WAY =
  "This is the only way left to sign in to your account. Set a password first (Password: email me a password link) or link another provider, then unlink this one.";

export async function mount(section) {
  const body = $("tbody", section);
  const none = $("#identities-none", section);
  const linkers = $("#link-providers", section);
  const status = statusLine(section);
  const configured = await providers();

  async function link(provider) {
    toProvider(await call("POST", `/api/v1/auth/providers/${encodeURIComponent(provider.id)}/link`));
  }

  async function unlink(button, identity) {
    await act(button, status, async () => {
      try {
        await call("DELETE", `/api/v1/auth/identities/${identity.id}`);
      } catch (problem) {
        if (problem instanceof Problem && problem.kind === "last-sign-in-method") {
          status.textContent = LAST_WAY;
          return;
        }
        throw problem;
      }
      await load();
    });
  }

  async function load() {
    const { items } = await call("GET", "/api/v1/auth/identities");
    body.replaceChildren(
      ...items.map((identity) => {
        const button = el(
          "button",
          { type: "button", class: "danger", "aria-label": `Unlink ${identity.provider_name} (${identity.email || "no email"})` },
          "Unlink",
        );
        button.addEventListener("click", () => unlink(button, identity));
        return el(
          "tr",
          { "data-identity": identity.id, "data-provider": identity.provider },
          el("td", {}, identity.provider_name, el("br"), el("span", { class: "muted" }, identity.email || "")),
          el("td", {}, when(identity.created_at)),
          el("td", {}, button),
        );
      }),
    );
    $(".table", section).hidden = !items.length;
    none.hidden = Boolean(items.length);
    const linked = new Set(items.map((identity) => identity.provider));
    linkers.replaceChildren(
      ...configured
        .filter((provider) => !linked.has(provider.id))
        .map((provider) => {
          const button = el("button", { type: "button", class: "secondary" }, `Link ${provider.name}`);
          button.addEventListener("click", () => act(button, status, () => link(provider)));
          return button;
        }),
    );
    section.hidden = !items.length && !configured.length && !outcome;
  }

  await load();
  if (outcome) {
    const box = await showOutcome($("h2", section), outcome);
    section.hidden = false;
    box.scrollIntoView({ block: "center" });
  }
}
