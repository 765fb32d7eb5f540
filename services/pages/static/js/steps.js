// How a sign-in finishes. A token response ends it (the session starts, the page moves on);
// any other answer of a first factor (password, emailed link, invitation, provider) names a
// further step, such as a second-factor challenge, and the module registered for that kind
// runs it: adding a sign-in step is one module calling `registerStep` and one import in
// the page that can meet it.
import { signedIn } from "./api.js";
import { nextPath } from "./ui.js";

const steps = new Map();

export function registerStep(kind, run) {
  steps.set(kind, run);
}

/** Continue after a first factor's answer; `run(answer, finish)` calls `finish(tokens)`. */
export async function continueSignIn(answer) {
  if (answer.access_token) return finish(answer);
  const run = steps.get(answer.kind || answer.type);
  if (!run) throw new Error(`no sign-in step registered for ${answer.kind || answer.type}`);
  return run(answer, finish);
}

export function finish(tokens) {
  signedIn(tokens);
  location.assign(nextPath());
}
