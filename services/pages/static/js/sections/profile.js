// Account: the user's name (PATCH /api/v1/users/{own id}).
import { call } from "../api.js";
import { $, el, onSubmit } from "../ui.js";

export function mount(section, current) {
  const form = $("#profile-form", section);
  form.elements.name.value = current.user.name;
  onSubmit(form, async (values) => {
    const user = await call("PATCH", `/api/v1/users/${current.user.id}`, { name: values.name });
    current.user.name = user.name;
    form.prepend(el("p", { class: "notice", role: "status" }, "Name saved."));
  });
}
