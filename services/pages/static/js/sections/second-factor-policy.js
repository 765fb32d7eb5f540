// Org: whether every member must sign in with a second factor (GET/PUT
// /api/v1/org/second-factor-policy). Owners change it (after a recent sign-in with a second
// factor of their own); admins see it.
import { call } from "../api.js";
import { $, el, onSubmit } from "../ui.js";

const POLICY = "/api/v1/org/second-factor-policy";

export async function mount(section, current) {
  const form = $("#policy-form", section);
  const box = form.elements.required;
  const state = $("#policy-state", section);
  const show = (required) => {
    box.checked = required;
    state.textContent = required
      ? "Required: members without a second factor are asked to set one up at their next sign-in."
      : "Not required: each member chooses.";
  };
  show((await call("GET", POLICY)).required);
  if (current.user.role !== "owner") {
    box.disabled = true;
    form.querySelector("button").remove();
    form.append(el("p", { class: "muted" }, "Only an owner can change this."));
    return;
  }
  onSubmit(form, async () => {
    show((await call("PUT", POLICY, { required: box.checked })).required);
    form.prepend(el("p", { class: "notice", role: "status" }, "Policy saved."));
  });
}
