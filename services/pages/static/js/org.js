// /org: one module per section (sections/*.js, each exporting `mount(section, current)`).
import { mountSections, requireSession } from "./signed-in.js";

const current = await requireSession();
await mountSections(current, []);
