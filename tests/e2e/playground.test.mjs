// The chat playground (GET /) in a real browser: Debian's chromium driven by playwright-core,
// headless, against `turbine run` on stories260K. Without chromium the browser tests skip (and
// fail under CI=true). A screenshot of an answered prompt is saved as
// tests/e2e/artefacts/playground.png (or $TURBINE_TEST_ARTEFACTS/playground.png).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer, metric, MODEL_NAME } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTEFACTS = process.env.TURBINE_TEST_ARTEFACTS ?? path.join(here, 'artefacts');
const haveChromium = fs.existsSync(CHROMIUM);

function needChromium(t) {
  if (haveChromium) return true;
  if (process.env.CI === 'true') assert.fail(`${CHROMIUM} is required in CI (scripts/install-deps installs chromium)`);
  t.skip(`${CHROMIUM} not installed`);
  return false;
}

// A fresh profile per browser; headless, nothing contacting the outside world.
async function openBrowser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'turbine-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 720 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return {
    page, problems,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

async function ask(page, prompt) {
  await page.fill('#prompt', prompt);
  await page.click('#send');
}

// The last assistant message once its request has ended (data-state is set at the end).
async function lastAnswer(page, timeout = 30000) {
  await page.waitForFunction(() => [...document.querySelectorAll('.msg.assistant')].pop()?.dataset.state,
    null, { timeout });
  const msg = page.locator('.msg.assistant').last();
  return { state: await msg.getAttribute('data-state'), text: await msg.locator('.content').textContent() };
}

test('GET / serves the page (HTML, CSP, no external URLs); --no-ui turns it off', async () => {
  const on = await startServer();
  try {
    const r = await fetch(`${on.base}/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.headers.get('content-security-policy'), /connect-src 'self'/);
    const html = await r.text();
    assert.match(html, /<title>Turbine playground<\/title>/);
    // Everything inline: no CDN, no other origin.
    assert.doesNotMatch(html, /(src|href)=["']https?:/);
  } finally {
    await on.stop();
  }
  const off = await startServer(['--no-ui']);
  try {
    const r = await fetch(`${off.base}/`);
    assert.equal(r.status, 404);
    assert.equal((await r.json()).error.type, 'not_found_error');
  } finally {
    await off.stop();
  }
  // `turbine frontend` serves the same page (and takes --no-ui too).
  for (const [args, status] of [[[], 200], [['--no-ui'], 404]]) {
    const fe = spawn(process.env.TURBINE_BIN, ['frontend', '--discovery', 'memory', '--host', '127.0.0.1', '--port', '0', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const port = await new Promise((resolve, reject) => {
        let log = '';
        const onData = (d) => { log += d; const m = log.match(/serving on http:\/\/[^:]+:(\d+)/); if (m) resolve(Number(m[1])); };
        fe.stdout.on('data', onData);
        fe.stderr.on('data', onData);
        fe.on('exit', (c) => reject(new Error(`frontend exited ${c}: ${log}`)));
      });
      const r = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(r.status, status);
      if (status === 200) assert.match(await r.text(), /<title>Turbine playground<\/title>/);
    } finally {
      fe.kill('SIGTERM');
      await new Promise((r) => fe.once('exit', r));
    }
  }
});

test('the playground loads without console errors and streams an answer with TTFT and tokens/s', async (t) => {
  if (!needChromium(t)) return;
  const server = await startServer();
  const b = await openBrowser();
  try {
    const { page, problems } = b;
    const streamed = [];
    page.on('response', (r) => {
      if (r.url().endsWith('/v1/chat/completions')) streamed.push(r.headers()['content-type']);
    });
    await page.goto(`${server.base}/`);
    await page.waitForFunction((name) => [...document.querySelectorAll('#model option')].some((o) => o.value === name), MODEL_NAME);
    assert.equal(await page.inputValue('#model'), MODEL_NAME);
    await page.fill('#system', 'You tell short stories.');
    await page.fill('#max-tokens', '48');
    await page.locator('#temperature').fill('0');
    await ask(page, 'Once upon a time');
    const a = await lastAnswer(page);
    assert.equal(a.state, 'finish: length');
    assert.ok(a.text.length > 10, `answer: ${JSON.stringify(a.text)}`);
    assert.deepEqual(streamed, ['text/event-stream']);
    const stats = await page.textContent('#stats');
    assert.match(stats, /TTFT \d+ ms/);
    assert.match(stats, /[\d.]+ tok\/s/);
    assert.match(stats, /48 tokens/);
    assert.equal(await page.locator('.msg.user .content').first().textContent(), 'Once upon a time');
    assert.ok(!(await page.isVisible('#error')));
    // The conversation goes on: the second request carries the first answer.
    await ask(page, 'And then?');
    const second = await lastAnswer(page);
    assert.equal(second.state, 'finish: length');
    assert.equal(await page.locator('.msg').count(), 4);
    fs.mkdirSync(ARTEFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTEFACTS, 'playground.png'), fullPage: true });
    assert.deepEqual(problems, []);
    assert.equal(await metric(server.base, 'turbine_frontend_requests_total{endpoint="chat_completions"'), 2);
  } finally {
    await b.close();
    await server.stop();
  }
});

test('stop ends a streaming answer and the server cancels the request', async (t) => {
  if (!needChromium(t)) return;
  // The mock engine (simulated 5 ms steps, slowed 20x) streams slowly enough to stop half-way.
  const server = await startServer(['--engine', 'mock', '--speedup', '0.05']);
  const b = await openBrowser();
  try {
    const { page, problems } = b;
    await page.goto(`${server.base}/`);
    await page.waitForSelector('#model option', { state: 'attached' });
    await page.fill('#max-tokens', '400');
    await ask(page, 'Tell me a long story');
    const content = page.locator('.msg.assistant .content').last();
    await page.waitForFunction(() => document.querySelector('.msg.assistant:last-child .content')?.textContent.length > 0);
    const early = (await content.textContent()).length;
    await page.waitForFunction((n) => document.querySelector('.msg.assistant:last-child .content').textContent.length > n, early);
    assert.ok(await page.isEnabled('#stop'));
    assert.ok(!(await page.isEnabled('#send')));
    await page.click('#stop');
    const a = await lastAnswer(page);
    assert.equal(a.state, 'stopped');
    assert.match(await page.textContent('#stats'), /stopped/);
    assert.ok(await page.isEnabled('#send'));
    assert.ok(!(await page.isEnabled('#stop')));
    const atStop = (await content.textContent()).length;
    await page.waitForTimeout(500);
    assert.equal((await content.textContent()).length, atStop, 'text kept growing after stop');
    assert.ok(!(await page.isVisible('#error')));
    // The browser closed the stream; the frontend noticed and cancelled the engine request.
    const deadline = Date.now() + 5000;
    while (await metric(server.base, 'turbine_frontend_disconnected_clients') < 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await metric(server.base, 'turbine_frontend_disconnected_clients'), 1);
    assert.deepEqual(problems, []);
  } finally {
    await b.close();
    await server.stop();
  }
});

test('a bad API key shows the server\'s error; the right one works', async (t) => {
  if (!needChromium(t)) return;
  const server = await startServer(['--api-key', 'sekret']);
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(`${server.base}/`);
    // No key: /v1/models is refused and the page says so.
    await page.waitForSelector('#error.shown');
    assert.match(await page.textContent('#error'), /401.*Incorrect API key/);
    await page.fill('#api-key', 'wrong');
    await page.dispatchEvent('#api-key', 'change');
    await ask(page, 'Hello');
    const a = await lastAnswer(page);
    assert.equal(a.state, 'error');
    assert.match(await page.textContent('#error'), /Error 401: Incorrect API key provided/);
    await page.fill('#api-key', 'sekret');
    await page.dispatchEvent('#api-key', 'change');
    await page.waitForSelector('#model option', { state: 'attached' });
    assert.ok(!(await page.isVisible('#error')));
    await page.fill('#max-tokens', '8');
    await ask(page, 'Hello');
    assert.equal((await lastAnswer(page)).state, 'finish: length');
  } finally {
    await b.close();
    await server.stop();
  }
});

test('reasoning_content deltas are shown apart from the answer', async (t) => {
  if (!needChromium(t)) return;
  // stories260K has no reasoning parser; the page's handling of a reasoning model's stream is
  // checked with a canned SSE answer for /v1/chat/completions (the page itself comes from turbine).
  const server = await startServer();
  const b = await openBrowser();
  try {
    const { page, problems } = b;
    const chunk = (delta, finish = null) => `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    await page.route('**/v1/chat/completions', (route) => route.fulfill({
      status: 200, contentType: 'text/event-stream',
      body: chunk({ role: 'assistant', reasoning_content: 'The user greets me. ' }) + chunk({ reasoning_content: 'Answer briefly.' }) +
        chunk({ content: 'Hello' }) + chunk({ content: ' there!' }) + chunk({}, 'stop') +
        `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 9, total_tokens: 14 } })}\n\ndata: [DONE]\n\n`,
    }));
    await page.goto(`${server.base}/`);
    await page.waitForSelector('#model option', { state: 'attached' });
    await ask(page, 'Hi');
    const a = await lastAnswer(page);
    assert.equal(a.state, 'finish: stop');
    assert.equal(a.text, 'Hello there!');
    const reasoning = page.locator('.msg.assistant .reasoning').last();
    assert.ok(await reasoning.isVisible());
    assert.equal(await reasoning.locator('.text').textContent(), 'The user greets me. Answer briefly.');
    assert.match(await page.textContent('#stats'), /9 tokens/);
    // An answer without reasoning keeps the box hidden.
    await page.unroute('**/v1/chat/completions');
    await page.fill('#max-tokens', '8');
    await ask(page, 'Once upon a time');
    assert.equal((await lastAnswer(page)).state, 'finish: length');
    assert.ok(await page.locator('.msg.assistant .reasoning').last().isHidden());
    assert.deepEqual(problems, []);
  } finally {
    await b.close();
    await server.stop();
  }
});
