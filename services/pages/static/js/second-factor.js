// /auth/second-factor#challenge=…: where an external provider's sign-in of an account with a
// second factor lands. The challenge leaves the address bar first; POST
// /second-factor/challenge says what it accepts, then the usual second-factor step runs.
import { auth } from "./api.js";
import { secondFactor } from "./second-factor-step.js";
import { finish } from "./steps.js";
import { el, showPage, takeFragment } from "./ui.js";

const challenge = takeFragment().get("challenge");
const again = () => el("a", { class: "button", href: "/auth/sign-in" }, "Sign in");
document.querySelector("main").removeAttribute("aria-busy");

if (!challenge) {
  showPage("Sign in first", "This page finishes a sign-in that asked for your second factor.", again());
} else {
  try {
    secondFactor(await auth("POST", "/second-factor/challenge", { challenge }), finish);
  } catch (problem) {
    if (problem.kind === "invalid-second-factor-challenge") {
      showPage("Sign in again", "This sign-in has expired or was already finished. Start again from the sign-in page.", again());
    } else {
      showPage("Something went wrong", problem.detail || problem.title || String(problem), again());
    }
  }
}
