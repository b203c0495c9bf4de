// Bundle the widget for the Python package: one ES module and one stylesheet, no CDN; and the
// script of the page grid.save("x.html") writes.
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
  // one stylesheet: the widget's, then each overlay's own
  build({
    ...common,
    stdin: { contents: ["widget.css", "roles.css"].map((f) => `@import "./${f}";`).join("\n"), resolveDir: "src", loader: "css" },
    outfile: "../headwidget/static/widget.css",
  }),
  // the saved page's script (headwidget/views/files.py inlines it): small, and left readable
  build({
    ...common,
    entryPoints: ["src/page.ts"],
    outfile: "../headwidget/static/page.js",
    format: "esm",
    target: ["es2022"], // top-level await
    minify: false,
  }),
]);
