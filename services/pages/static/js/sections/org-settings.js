// Org: its name (PATCH /api/v1/org).
import { call } from "../api.js";
import { $, el, onSubmit } from "../ui.js";

export async function mount(section, current) {
  const form = $("#org-form", section);
  const org = await call("GET", "/api/v1/org");
  form.elements.name.value = org.name;
  onSubmit(form, async (values) => {
    const saved = await call("PATCH", "/api/v1/org", { name: values.name });
    current.org.name = saved.name;
    $("#org-name").textContent = saved.name;
    form.prepend(el("p", { class: "notice", role: "status" }, "Name saved."));
  });
}
