#!/usr/bin/env node
// Copies the admin UI's third-party assets from node_modules (installed by `npm ci` from
// the npm registry, pinned by package-lock.json) into src/portway/web/static/vendor/,
// which is git-ignored and served by WhiteNoise. Run: `npm ci && npm run build`.
// No bundler: Tabler ships ready-made minified files; this only picks the ones we use.

import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const vendor = join(root, "src", "portway", "web", "static", "vendor");

// [package, file inside the package, destination inside vendor/]
const FILES = [
  ["@tabler/core", "dist/css/tabler.min.css", "tabler/css/tabler.min.css"],
  ["@tabler/core", "dist/css/tabler.min.css.map", "tabler/css/tabler.min.css.map"],
  ["@tabler/core", "dist/js/tabler.min.js", "tabler/js/tabler.min.js"],
  ["@tabler/core", "dist/js/tabler.min.js.map", "tabler/js/tabler.min.js.map"],
  ["@tabler/core", "LICENSE", "tabler/LICENSE"],
  ["@tabler/icons-webfont", "dist/tabler-icons.min.css", "tabler-icons/tabler-icons.min.css"],
  ["@tabler/icons-webfont", "dist/fonts/tabler-icons.woff2", "tabler-icons/fonts/tabler-icons.woff2"],
  ["@tabler/icons-webfont", "dist/fonts/tabler-icons.woff", "tabler-icons/fonts/tabler-icons.woff"],
  ["@tabler/icons-webfont", "dist/fonts/tabler-icons.ttf", "tabler-icons/fonts/tabler-icons.ttf"],
  ["@tabler/icons-webfont", "LICENSE", "tabler-icons/LICENSE"],
];

function packageVersion(name) {
  const manifest = join(modules, name, "package.json");
  if (!existsSync(manifest)) {
    console.error(`error: ${name} is not installed; run \`npm ci\` first`);
    process.exit(1);
  }
  return JSON.parse(readFileSync(manifest, "utf8")).version;
}

const versions = {};
for (const [pkg] of FILES) versions[pkg] ??= packageVersion(pkg);

rmSync(vendor, { recursive: true, force: true });
for (const [pkg, file, dest] of FILES) {
  const source = join(modules, pkg, file);
  if (!existsSync(source)) {
    if (file === "LICENSE") continue; // not every release ships one at the top level
    console.error(`error: ${pkg}@${versions[pkg]} has no ${file}`);
    process.exit(1);
  }
  const target = join(vendor, dest);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(source, target);
}
// Written last: the UI treats its presence as "assets are built" (see portway.web.assets).
writeFileSync(join(vendor, "manifest.json"), JSON.stringify({ packages: versions }, null, 2) + "\n");
console.log(`vendor assets written to ${vendor}`);
for (const [pkg, version] of Object.entries(versions)) console.log(`  ${pkg}@${version}`);
