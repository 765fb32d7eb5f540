// Account: a new password through an emailed link (POST /password/forgot for the user's own
// address; the link opens /auth/reset-password). The public API changes a password only so.
import { auth } from "../api.js";
import { $, el, onSubmit } from "../ui.js";

export function mount(section, current) {
  const form = $("#password-form", section);
  onSubmit(form, async () => {
    await auth("POST", "/password/forgot", { email: current.user.email });
    form.replaceChildren(
      el("p", { class: "notice", role: "status" }, `A link to choose a new password is on its way to ${current.user.email}.`),
    );
  });
}
