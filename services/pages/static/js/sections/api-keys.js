// Org: API keys (GET /api-keys, POST /api-keys {name, scopes, expires_at}: the key itself is
// in that one answer only, shown once with a copy button; DELETE /api-keys/{id}).
import { call } from "../api.js";
import { $, act, el, onSubmit, statusLine, when } from "../ui.js";
import { pagedTable } from "../list.js";

export async function mount(section) {
  const form = $("#key-form", section);
  const shown = $("#new-key", section);
  const value = $("#new-key-value", section);
  const copied = $("#copy-state", section);
  const table = pagedTable(section, "/api/v1/api-keys", row);
  const status = statusLine(section);

  function state(key) {
    if (key.revoked) return "revoked";
    if (key.expired) return "expired";
    return key.expires_at ? `expires ${when(key.expires_at)}` : "never expires";
  }

  function row(key) {
    const live = !key.revoked && !key.expired;
    const action = live
      ? el("button", { type: "button", class: "danger", "aria-label": `Revoke the key ${key.name}` }, "Revoke")
      : el("span", { class: "muted" }, "");
    if (live) {
      action.addEventListener("click", () =>
        act(action, status, async () => {
          await call("DELETE", `/api/v1/api-keys/${key.id}`);
          await table.reload();
        }),
      );
    }
    return el(
      "tr",
      { "data-key": key.id },
      el("td", {}, key.name, el("br"), el("code", {}, `${key.prefix}…`)),
      el("td", {}, key.scopes.join(", "), el("br"), el("span", { class: "muted" }, state(key))),
      el("td", {}, action),
    );
  }

  onSubmit(form, async (values) => {
    const body = { name: values.name, scopes: values.scopes || [] };
    // A date is the end of that day in the reader's time zone.
    if (values.expires_at) body.expires_at = new Date(`${values.expires_at}T23:59:59`).toISOString();
    const created = await call("POST", "/api/v1/api-keys", body);
    value.textContent = created.key;
    copied.textContent = "";
    shown.hidden = false;
    form.reset();
    await table.reload();
    $("#copy-key", section).focus();
  });

  $("#copy-key", section).addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value.textContent);
      copied.textContent = "Copied.";
    } catch {
      // No clipboard permission: select the key so a keyboard copy takes it.
      getSelection().selectAllChildren(value);
      copied.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  });
  await table.reload();
}
