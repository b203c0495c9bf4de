// The roles bar above the panels: the legend of the role glyphs, each with a checkbox
// (roles_shown) and its count of heads, the role threshold (role_threshold) and the filter "only
// heads with role R" (role_filter, the others faded). Hidden when the grid has no role maps.
import type { View } from "./context";
import { h, option } from "./dom";
import { glyphIcon } from "./role-draw";
import { parseTyped } from "./threshold";

export function buildRoleControls(v: View): { el: HTMLElement; sync(): void } {
  const { doc } = v;
  const el = h(doc, "div", { class: "hw-roles", role: "group", "aria-label": "Head roles" });
  el.hidden = true;
  let built = "";
  let threshold: HTMLInputElement | null = null;
  let filter: HTMLSelectElement | null = null;

  const build = () => {
    const roles = v.roles;
    const label = h(doc, "span", { class: "hw-control-label" }, "Roles");
    label.title = `heads whose ${roles.units} is at least the threshold get the role's glyph on every panel (role maps of detect_heads)`;
    const items = roles.names.map((name, r) => {
      const item = h(doc, "label", { class: "hw-role-toggle" });
      item.dataset.role = name;
      const box = h(doc, "input", { type: "checkbox", class: "hw-role-shown", "aria-label": `show the ${name} glyph` }) as HTMLInputElement;
      box.checked = roles.shown[r];
      box.addEventListener("change", () => {
        const shown = v.roles.names.filter((n, k) => (k === r ? box.checked : v.roles.shown[k]));
        v.setTrait("roles_shown", shown);
      });
      const icon = glyphIcon(doc, roles.shapes[r], 14, v.dpr);
      icon.classList.add("hw-glyph");
      icon.setAttribute("aria-hidden", "true");
      const count = h(doc, "span", { class: "hw-role-count" });
      item.append(box, icon, h(doc, "span", { class: "hw-role-name" }, name), count);
      if (roles.descriptions[r]) item.title = `${name}: ${roles.descriptions[r]}`;
      return item;
    });
    threshold = h(doc, "input", { type: "text", inputmode: "decimal", size: "4", class: "hw-role-threshold", "aria-label": "Role threshold" }) as HTMLInputElement;
    const commit = () => {
      const value = parseTyped(threshold!.value);
      if (value === null) threshold!.value = String(v.roles.threshold);
      else if (value !== v.roles.threshold) v.setTrait("role_threshold", value);
    };
    threshold.addEventListener("change", commit);
    threshold.addEventListener("keydown", (e: KeyboardEvent) => {
      if (e.key === "Enter") {
        e.preventDefault();
        commit();
      }
    });
    const thresholdWrap = h(doc, "label", { class: "hw-control" });
    thresholdWrap.append(h(doc, "span", { class: "hw-control-label" }, "≥"), threshold);
    filter = h(doc, "select", { class: "hw-role-filter", "aria-label": "Only heads with role" });
    filter.append(option(doc, "", "all heads"), ...roles.names.map((n) => option(doc, n, n)));
    filter.addEventListener("change", () => v.setTrait("role_filter", filter!.value));
    const filterWrap = h(doc, "label", { class: "hw-control" });
    filterWrap.append(h(doc, "span", { class: "hw-control-label" }, "only heads with"), filter);
    filterWrap.title = "fade every head without this role (its role score below the threshold)";
    el.replaceChildren(label, ...items, thresholdWrap, filterWrap);
  };

  const sync = () => {
    const roles = v.roles;
    el.hidden = !roles.names.length;
    if (el.hidden) return;
    const key = JSON.stringify([roles.names, roles.shapes, roles.descriptions, roles.units, v.dpr]);
    if (key !== built) {
      built = key;
      build();
    }
    el.querySelectorAll<HTMLElement>(".hw-role-toggle").forEach((item, r) => {
      (item.querySelector("input") as HTMLInputElement).checked = roles.shown[r];
      item.querySelector(".hw-role-count")!.textContent = `(${roles.counts[r]})`;
    });
    if (threshold && doc.activeElement !== threshold) threshold.value = String(roles.threshold);
    if (filter) filter.value = roles.filter >= 0 ? roles.names[roles.filter] : "";
  };
  return { el, sync };
}
