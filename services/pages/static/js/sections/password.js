// Account: change the password with the current one (POST /password/change: a recent sign-in,
// asked for by `call` when needed; every other session ends), or get an emailed link to choose
// one (POST /password/forgot for the user's own address, for a forgotten or missing password).
import { auth, call } from "../api.js";
import { $, el, onSubmit } from "../ui.js";

export function mount(section, current) {
  const change = $("#password-change", section);
  onSubmit(change, async (values) => {
    await call("POST", "/api/v1/auth/password/change", values);
    change.reset();
    change.prepend(el("p", { class: "notice", role: "status" }, "Password changed. Every other session was signed out."));
  });
  const form = $("#password-form", section);
  onSubmit(form, async () => {
    await auth("POST", "/password/forgot", { email: current.user.email });
    form.replaceChildren(
      el("p", { class: "notice", role: "status" }, `A link to choose a new password is on its way to ${current.user.email}.`),
    );
  });
}
