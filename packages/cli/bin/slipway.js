#!/usr/bin/env node
// The `slipway` command. It runs dist/slipway.mjs, the bundle that `npm ci`/`npm install` build
// (root `prepare` script; again with `npm run build -w packages/cli`), when that bundle is at least
// as new as the sources; otherwise (no bundle yet, or sources edited since) it runs the TypeScript
// sources through tsx, slower to start but never stale.
import { readdirSync, statSync } from 'node:fs';
import { URL } from 'node:url';

const bundle = new URL('../dist/slipway.mjs', import.meta.url);

function bundleIsCurrent() {
  let built;
  try {
    built = statSync(bundle).mtimeMs;
  } catch {
    return false;
  }
  const sources = new URL('../src/', import.meta.url);
  try {
    const inputs = [new URL('../package.json', import.meta.url), ...readdirSync(sources).map((name) => new URL(name, sources))];
    return inputs.every((input) => statSync(input).mtimeMs <= built);
  } catch {
    // Installed without its sources: the bundle is all there is.
    return true;
  }
}

if (bundleIsCurrent()) {
  await import(bundle.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/bin.ts');
}
