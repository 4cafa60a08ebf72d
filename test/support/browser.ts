import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { TestServer } from './dev-server.ts';
import { scenario } from './scenario.ts';

/** Debian's Chromium (installed by `npm test`'s pretest, scripts/ensure-browser.sh), headless. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

/** Opens a release of `app` whose artifact is one index.html reading "<app> <version>"; answers its id. */
export async function openIndexRelease(
  server: TestServer,
  app: string,
  version: string,
  options: { description?: string; token?: string } = {},
): Promise<string> {
  const artifact = await scenario(() => server).tarball(app, { 'index.html': `${app} ${version}` });
  const opened = await server.call('POST', '/v1/releases', {
    body: { app, version, artifact, ...(options.description ? { description: options.description } : {}) },
    ...(options.token ? { token: options.token } : {}),
  });
  if (opened.status !== 202) throw new Error(JSON.stringify(opened.body));
  return opened.body.id as string;
}

/** A new page signed in with `token`, on the Apps page. */
export async function signIn(browser: Browser, server: TestServer, token: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(server.url);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Apps' }).waitFor();
  return page;
}

/** With SLIPWAY_SCREENSHOTS=<folder>, saves the whole page as <folder>/<name>.png (the README's pictures). */
export async function screenshot(page: Page, name: string) {
  const folder = process.env.SLIPWAY_SCREENSHOTS;
  if (folder) await page.screenshot({ path: join(folder, `${name}.png`), fullPage: true });
}
