import { readFileSync } from 'node:fs';

export interface StaticAsset {
  contentType: string;
  body: string;
}

const FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/dashboard.js': ['dashboard.js', 'text/javascript; charset=utf-8'],
  '/dashboard.css': ['dashboard.css', 'text/css; charset=utf-8'],
} as const;

/** The dashboard: three static files, served by the API handler itself (locally and on AWS). */
export function dashboardAssets(): Record<string, StaticAsset> {
  const assets: Record<string, StaticAsset> = {};
  for (const [path, [file, contentType]] of Object.entries(FILES)) {
    assets[path] = { contentType, body: readFileSync(new URL(`./${file}`, import.meta.url), 'utf8') };
  }
  return assets;
}
