// Account: where this user is signed in (GET /api/v1/auth/sessions), this one marked; revoke
// one (DELETE /sessions/{id}), or all (POST /logout-all, which ends this one too).
import { call, signOut } from "../api.js";
import { $, act, el, statusLine, when } from "../ui.js";

function device(item) {
  return item.user_agent ? item.user_agent.slice(0, 120) : "Unknown device";
}

export async function mount(section) {
  const body = $("tbody", section);
  const status = statusLine(section);
  async function load() {
    const { items } = await call("GET", "/api/v1/auth/sessions");
    body.replaceChildren(
      ...items.map((item) => {
        const action = item.current
          ? el("span", { class: "tag" }, "This session")
          : el("button", { type: "button", class: "danger", "aria-label": `Sign out the session of ${when(item.created_at)}` }, "Sign out");
        if (!item.current) action.addEventListener("click", () => act(action, status, () => revoke(item.id)));
        return el(
          "tr",
          { "data-session": item.id, "data-current": item.current ? "true" : "false" },
          el("td", {}, device(item), el("br"), el("span", { class: "muted" }, item.ip || "")),
          el("td", {}, when(item.last_used_at)),
          el("td", {}, action),
        );
      }),
    );
  }
  async function revoke(id) {
    await call("DELETE", `/api/v1/auth/sessions/${id}`);
    await load();
  }
  const reload = $("#sessions-reload", section);
  reload.addEventListener("click", () => act(reload, status, load));
  const everywhere = $("#sign-out-everywhere", section);
  everywhere.addEventListener("click", () =>
    act(everywhere, status, async () => {
      await call("POST", "/api/v1/auth/logout-all");
      await signOut().catch(() => {});
      location.assign("/auth/sign-in");
    }),
  );
  await load();
}
