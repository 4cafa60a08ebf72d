import { readFileSync } from 'node:fs';

export interface StaticAsset {
  contentType: string;
  body: string;
}

/** The dashboard's files by the path that serves them. They sit next to this module (and, on AWS, next to the API's bundle). */
export const DASHBOARD_FILES = {
  '/': { file: 'index.html', contentType: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', contentType: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', contentType: 'text/css; charset=utf-8' },
} as const satisfies Record<string, { file: string; contentType: string }>;

/**
 * The dashboard: three static files, served by the API handler itself (locally and on AWS). Nothing
 * is read here: each file is read on the first request for it, then kept, so only a process that
 * serves the dashboard ever needs the files beside it.
 */
export function dashboardAssets(): (path: string) => StaticAsset | undefined {
  const read = new Map<string, StaticAsset>();
  return (path) => {
    if (!Object.hasOwn(DASHBOARD_FILES, path)) return undefined;
    const { file, contentType } = DASHBOARD_FILES[path as keyof typeof DASHBOARD_FILES];
    let asset = read.get(path);
    if (!asset) {
      asset = { contentType, body: readFileSync(new URL(`./${file}`, import.meta.url), 'utf8') };
      read.set(path, asset);
    }
    return asset;
  };
}
