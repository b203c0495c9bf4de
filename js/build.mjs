// Bundle the widget for the Python package: one ES module and one stylesheet, no CDN.
import { build } from "esbuild";

const watch = process.argv.includes("--watch");
const common = { bundle: true, minify: !watch, logLevel: "info", legalComments: "none" };

await Promise.all([
  build({
    ...common,
    entryPoints: ["src/index.ts"],
    outfile: "../headwidget/static/widget.js",
    format: "esm",
    target: ["es2020"],
  }),
  build({ ...common, entryPoints: ["src/widget.css"], outfile: "../headwidget/static/widget.css" }),
]);
