// Org: invitations (GET /invitations, POST /invitations {email, role}, DELETE /invitations/{id}).
import { call } from "../api.js";
import { $, act, el, onSubmit, statusLine, when } from "../ui.js";
import { pagedTable } from "../list.js";

export async function mount(section) {
  const form = $("#invite-form", section);
  const table = pagedTable(section, "/api/v1/invitations", row);
  const status = statusLine(section);

  function row(invitation) {
    const action =
      invitation.status === "pending"
        ? el("button", { type: "button", class: "danger", "aria-label": `Revoke the invitation of ${invitation.email}` }, "Revoke")
        : el("span", { class: "muted" }, "");
    if (invitation.status === "pending") {
      action.addEventListener("click", () =>
        act(action, status, async () => {
          await call("DELETE", `/api/v1/invitations/${invitation.id}`);
          await table.reload();
        }),
      );
    }
    return el(
      "tr",
      { "data-invitation": invitation.id },
      el("td", {}, invitation.email, el("br"), el("span", { class: "muted" }, `as ${invitation.role}`)),
      el("td", {}, invitation.status, el("br"), el("span", { class: "muted" }, `until ${when(invitation.expires_at)}`)),
      el("td", {}, action),
    );
  }

  onSubmit(form, async (values) => {
    const invitation = await call("POST", "/api/v1/invitations", values);
    form.reset();
    form.prepend(el("p", { class: "notice", role: "status" }, `Invitation sent to ${invitation.email}.`));
    await table.reload();
  });
  await table.reload();
}
