// The web dashboard in a real browser: Debian's Chromium driven by playwright-core (no browser
// download). Log in, see a call appear live, open its detail, filter, clear; no console errors.
// Screenshots at desktop and phone widths go to e2e/node/artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startProxy } from './proxy.mjs';

const artifacts = path.join(path.dirname(fileURLToPath(import.meta.url)), 'artifacts');
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let proxy;
let browser;
const consoleProblems = [];

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  proxy = await startProxy('dashboard-test-token-0003');
  browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync', '--disable-quic'],
  });
});

after(async () => {
  await browser?.close();
  assert.equal(await proxy.stop(), 0);
});

const origin = () => proxy.baseURL.replace(/\/v1$/, '');

async function chat(content, extra = {}) {
  const response = await fetch(`${proxy.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${proxy.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }], ...extra }),
  });
  await response.text();
  return response.status;
}

async function openPage(viewport, colorScheme = 'light') {
  const context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') consoleProblems.push(message.text());
  });
  page.on('pageerror', (error) => consoleProblems.push(error.message));
  return { context, page };
}

async function logIn(page) {
  await page.goto(`${origin()}/`);
  const dialog = page.locator('dialog#login');
  await dialog.waitFor({ state: 'visible' });
  await page.fill('#login-token', 'not-the-token');
  await page.click('#login-form button[type=submit]');
  await page.locator('#login-error').waitFor({ state: 'visible' });
  // The browser reports the refused login as a failed resource load: expected, so not a problem.
  const refused = consoleProblems.findLastIndex((m) => m.includes('status of 401'));
  assert.ok(refused >= 0, 'the wrong token was refused with 401');
  consoleProblems.splice(refused, 1);
  await page.fill('#login-token', proxy.token);
  await page.click('#login-form button[type=submit]');
  await dialog.waitFor({ state: 'hidden' });
}

test('log in, watch a call arrive live, inspect, filter and clear', async () => {
  const { context, page } = await openPage({ width: 1280, height: 860 });
  const listings = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname === '/api/logs/api-calls') listings.push(url);
  });
  await logIn(page);

  // Overview: base URL and the token (masked, then revealed).
  await page.locator('#base-url').waitFor();
  assert.equal(await page.textContent('#base-url'), proxy.baseURL.replace('127.0.0.1', 'localhost'));
  assert.ok(!(await page.textContent('#access-token')).includes(proxy.token), 'the token starts masked');
  await page.click('button:has-text("Reveal")');
  assert.equal(await page.textContent('#access-token'), proxy.token);
  await page.click('button[role=tab]:has-text("Python")');
  assert.match(await page.textContent('.snippets pre'), /OpenAI\(base_url=/);
  await page.screenshot({ path: path.join(artifacts, 'overview-desktop.png'), fullPage: true });

  // API calls: the empty state first, then a call appears without a reload.
  await page.click('.tabs a[data-view=calls]');
  await page.locator('.empty h2:has-text("No calls yet")').waitFor();
  assert.equal(await chat('hello from the browser test'), 200);
  const firstRow = page.locator('tbody tr.clickable').first();
  await firstRow.waitFor();
  assert.match(await firstRow.textContent(), /gpt-4o/);
  assert.equal(await chat('', { messages: undefined }), 400);
  await page.locator('tbody tr.clickable').nth(1).waitFor();

  // Detail: the request body pretty-printed, headers redacted.
  await page.locator('tbody tr.clickable', { hasText: '200' }).first().click();
  const drawer = page.locator('aside.drawer');
  await drawer.locator('h3:has-text("Request body")').waitFor();
  const drawerText = await drawer.textContent();
  assert.match(drawerText, /hello from the browser test/);
  assert.match(drawerText, /\[redacted\]/);
  assert.ok(!drawerText.includes(proxy.token), 'no token in the detail');
  await page.screenshot({ path: path.join(artifacts, 'call-detail-desktop.png') });
  await page.keyboard.press('Escape');
  await drawer.waitFor({ state: 'detached' });

  // Filter by status: only the 400 remains.
  await page.selectOption('select[aria-label="Filter by status"]', '4xx');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr.clickable').length === 1);
  assert.match(await page.locator('tbody tr.clickable').first().textContent(), /400/);
  await page.selectOption('select[aria-label="Filter by status"]', '');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr.clickable').length === 2);

  // Stats and events render with data.
  await page.click('.tabs a[data-view=stats]');
  await page.locator('.metric').first().waitFor();
  await page.locator('svg.chart').first().waitFor();
  await page.screenshot({ path: path.join(artifacts, 'stats-desktop.png'), fullPage: true });
  await page.click('.tabs a[data-view=events]');
  await page.locator('td.message:has-text("proxy started")').waitFor();

  // Clear logs (after confirming).
  await page.click('.tabs a[data-view=calls]');
  await page.locator('tbody tr.clickable').first().waitFor();
  page.once('dialog', (dialog) => dialog.accept());
  await page.click('button:has-text("Clear logs")');
  await page.locator('.empty h2:has-text("No calls yet")').waitFor();

  // The table lists summaries: the whole calls (bodies and headers) are fetched one at a time.
  assert.ok(listings.length > 0, 'the table asked for the call list');
  assert.ok(listings.every((url) => url.searchParams.get('fields') === 'summary'), listings.join('\n'));

  await context.close();
  assert.deepEqual(consoleProblems, [], 'no errors or warnings in the console');
});

test('a phone-width screen is usable', async () => {
  await chat('for the phone screenshot');
  const { context, page } = await openPage({ width: 375, height: 812 });
  await logIn(page);
  await page.locator('#base-url').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
  await page.screenshot({ path: path.join(artifacts, 'overview-mobile.png'), fullPage: true });
  await page.click('.tabs a[data-view=calls]');
  await page.locator('tbody tr.clickable').first().waitFor();
  await page.screenshot({ path: path.join(artifacts, 'calls-mobile.png'), fullPage: true });
  await context.close();
  assert.deepEqual(consoleProblems, []);
});

test('dark mode follows the system', async () => {
  const { context, page } = await openPage({ width: 1280, height: 860 }, 'dark');
  await logIn(page);
  await page.locator('#base-url').waitFor();
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const [r, g, b] = background.match(/\d+/g).map(Number);
  assert.ok(r + g + b < 120, `the page is dark: ${background}`);
  await page.click('.tabs a[data-view=calls]');
  await page.locator('tbody tr.clickable, .empty h2').first().waitFor();
  await page.screenshot({ path: path.join(artifacts, 'calls-dark.png'), fullPage: true });
  await context.close();
  assert.deepEqual(consoleProblems, []);
});
