// How a sign-in finishes. A token response ends it (the session starts, the page moves on);
// any other answer of a first factor (password, emailed link, invitation, provider) names a
// further step, such as a second-factor challenge (a 401 problem carrying the challenge), and
// the module registered for that kind runs it: adding a sign-in step is one module calling
// `registerStep` and one import in the page that can meet it.
import { Problem, signedIn } from "./api.js";
import { nextPath } from "./ui.js";

const steps = new Map();

export function registerStep(kind, run) {
  steps.set(kind, run);
}

/** Continue after a first factor's answer (or the promise of it: a problem that names a step,
 * such as `second-factor-challenge`, continues too); `run(answer, finish)` calls `finish(tokens)`. */
export async function continueSignIn(pending) {
  let answer;
  try {
    answer = await pending;
  } catch (error) {
    if (!(error instanceof Problem) || !steps.has(error.kind)) throw error;
    answer = { ...error.body, kind: error.kind };
  }
  if (answer.access_token) return finish(answer);
  const run = steps.get(answer.kind || answer.type);
  if (!run) throw new Error(`no sign-in step registered for ${answer.kind || answer.type}`);
  return run(answer, finish);
}

/** The path that asks a member of an org requiring a second factor to set one up. */
export const ENROL_PATH = "/account?enrol=second-factor#second-factors";

export function finish(tokens) {
  signedIn(tokens);
  location.assign(tokens.second_factor_enrolment_required ? ENROL_PATH : nextPath());
}
