// Org: the audit log, newest first, a page at a time (GET /audit-log?cursor=).
import { el, when } from "../ui.js";
import { pagedTable } from "../list.js";

export async function mount(section) {
  const table = pagedTable(section, "/api/v1/audit-log", (event) =>
    el(
      "tr",
      { "data-event": event.id },
      el("td", {}, when(event.created_at)),
      el("td", {}, event.action, event.target_type ? el("span", { class: "muted" }, ` ${event.target_type}`) : null),
      el("td", { class: "muted" }, event.actor_user_id ? event.actor_user_id.slice(0, 8) : "system", event.ip_address ? ` · ${event.ip_address}` : ""),
    ),
  );
  await table.reload();
}
