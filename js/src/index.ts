// anywidget entry point of the headwidget front end.
import type { AnyModel } from "@anywidget/types";
import { createView } from "./view";

export default {
  render({ model, el }: { model: AnyModel<Record<string, any>>; el: HTMLElement }) {
    return createView(model, el);
  },
};
