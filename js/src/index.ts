// anywidget entry point of the headwidget front end.
import type { AnyModel } from "@anywidget/types";
import { createView } from "./view";

// for the page grid.save("x.html") writes, whose model converts a threshold to a new scale
export { convertThreshold } from "./units";
export { toFloat32 } from "./data";

export default {
  render({ model, el }: { model: AnyModel<Record<string, any>>; el: HTMLElement }) {
    return createView(model, el);
  },
};
