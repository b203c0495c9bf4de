// The paths bar above the panels: how many edges each task's panel draws (path_edges, a slider
// from 0 to the most any task has). Hidden when the grid has no paths.
import type { View } from "./context";
import { h } from "./dom";

export function buildPathControls(v: View): { el: HTMLElement; sync(): void } {
  const { doc } = v;
  const el = h(doc, "div", { class: "hw-paths", role: "group", "aria-label": "Paths between heads" });
  const label = h(doc, "span", { class: "hw-control-label" }, "Paths");
  label.title = "arrows between heads (trace_paths): each task's strongest edges by |effect|";
  const slider = h(doc, "input", { type: "range", min: "0", step: "1", class: "hw-path-edges", "aria-label": "Edges per task" }) as HTMLInputElement;
  const count = h(doc, "span", { class: "hw-path-count" });
  slider.addEventListener("input", () => {
    count.textContent = `${slider.value} per task`;
    v.setTrait("path_edges", Number(slider.value), "throttled");
  });
  slider.addEventListener("change", () => v.flushSave());
  el.append(label, slider, count);
  const sync = () => {
    const available = v.paths.available;
    el.hidden = !available;
    if (!available) return;
    const value = v.traits.pathEdges;
    slider.max = String(available);
    if (doc.activeElement !== slider) slider.value = String(Math.min(value, available));
    count.textContent = `${value} per task`;
  };
  el.hidden = true;
  return { el, sync };
}
