// A table filled from a cursor-paginated list of the API (`{items, next_cursor}`): the first
// page, then the next one each time its "more" button is pressed.
import { call } from "./api.js";

export function pagedTable(section, path, row, pageSize = 20) {
  const body = section.querySelector("tbody");
  const more = section.querySelector("button.more");
  let cursor = null;
  async function load(reset) {
    const query = new URLSearchParams({ limit: String(pageSize) });
    if (!reset && cursor) query.set("cursor", cursor);
    const page = await call("GET", `${path}?${query}`);
    if (reset) body.replaceChildren();
    body.append(...page.items.map(row));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  more.addEventListener("click", () => load(false));
  return { reload: () => load(true) };
}
