// Copies the browser libraries the dashboard uses from node_modules (npm
// install) into static/vendor, licences included, so that navad embeds them
// and the page needs no CDN. Run `npm run vendor` after changing a version
// in package.json, and commit static/vendor.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const modules = join(here, 'node_modules');
const vendor = join(here, 'static', 'vendor');

const libraries = {
  uplot: ['dist/uPlot.iife.min.js', 'dist/uPlot.min.css', 'LICENSE'],
  leaflet: [
    'dist/leaflet.js', 'dist/leaflet.css', 'LICENSE',
    'dist/images/layers.png', 'dist/images/layers-2x.png',
    'dist/images/marker-icon.png', 'dist/images/marker-icon-2x.png', 'dist/images/marker-shadow.png',
  ],
};

rmSync(vendor, { recursive: true, force: true });
const versions = [];
for (const [name, files] of Object.entries(libraries)) {
  const pkg = JSON.parse(readFileSync(join(modules, name, 'package.json'), 'utf8'));
  versions.push(`${name} ${pkg.version} (${pkg.license})`);
  for (const f of files) {
    const to = join(vendor, name, f.replace(/^dist\//, ''));
    mkdirSync(dirname(to), { recursive: true });
    cpSync(join(modules, name, f), to);
  }
}
writeFileSync(join(vendor, 'VERSIONS'), versions.join('\n') + '\n');
console.log('vendored:', versions.join(', '));
