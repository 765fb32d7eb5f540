// /account: one module per section (sections/*.js, each exporting `mount(section, current)`);
// a new section is a <section id> in account.html and one line here.
import { requireSession, mountSections } from "./signed-in.js";
import * as profile from "./sections/profile.js";
import * as password from "./sections/password.js";
import * as sessions from "./sections/sessions.js";
import * as identities from "./sections/identities.js";
import * as factors from "./sections/factors.js";

const current = await requireSession();
await mountSections(current, [
  ["profile", profile.mount],
  ["password", password.mount],
  ["second-factors", factors.mount],
  ["sessions", sessions.mount],
  ["identities", identities.mount],
]);
