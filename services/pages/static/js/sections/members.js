// Org: members and their roles (GET /users, PATCH /users/{id} {role}, DELETE /users/{id}).
import { call } from "../api.js";
import { act, el, statusLine } from "../ui.js";
import { pagedTable } from "../list.js";

const ROLES = ["member", "admin", "owner"];

export async function mount(section, current) {
  const table = pagedTable(section, "/api/v1/users", row);
  const status = statusLine(section);

  // The table is read again either way: a refused change shows the role as it still is.
  const change = (control, fn) => act(control, status, fn).finally(() => table.reload());

  function row(user) {
    const self = user.id === current.user.id;
    const role = el("select", { id: `role-${user.id}`, "aria-label": `Role of ${user.name}`, disabled: self });
    for (const value of ROLES) role.append(el("option", { value, selected: value === user.role }, value));
    role.addEventListener("change", () => change(role, () => call("PATCH", `/api/v1/users/${user.id}`, { role: role.value })));
    const remove = self
      ? el("span", { class: "tag" }, "You")
      : el("button", { type: "button", class: "danger", "aria-label": `Remove ${user.name}` }, "Remove");
    if (!self) remove.addEventListener("click", () => change(remove, () => call("DELETE", `/api/v1/users/${user.id}`)));
    return el(
      "tr",
      { "data-user": user.id },
      el("td", {}, el("span", { class: "member-name" }, user.name), el("br"), el("span", { class: "muted" }, user.email)),
      el("td", {}, role),
      el("td", {}, remove),
    );
  }

  await table.reload();
}
