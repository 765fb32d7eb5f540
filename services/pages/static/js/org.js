// /org (owners and admins): one module per section (sections/*.js, each exporting
// `mount(section, current)`); a new section is a <section id> in org.html and one line here.
import { MANAGERS, mountSections, requireSession } from "./signed-in.js";
import { el, showPage } from "./ui.js";
import * as settings from "./sections/org-settings.js";
import * as policy from "./sections/second-factor-policy.js";
import * as members from "./sections/members.js";
import * as invitations from "./sections/invitations.js";
import * as apiKeys from "./sections/api-keys.js";
import * as auditLog from "./sections/audit-log.js";

const current = await requireSession();
if (!MANAGERS.includes(current.user.role)) {
  showPage(
    "Only owners and admins manage the organization",
    "Ask an owner or an admin of your organization for what you need.",
    el("a", { class: "button", href: "/account" }, "Your account"),
  );
  document.body.dataset.ready = "true";
} else {
  await mountSections(current, [
    ["org-settings", settings.mount],
    ["second-factor-policy", policy.mount],
    ["members", members.mount],
    ["invitations", invitations.mount],
    ["api-keys", apiKeys.mount],
    ["audit-log", auditLog.mount],
  ]);
}
