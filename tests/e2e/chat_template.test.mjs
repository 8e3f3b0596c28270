// Chat templates end to end: `turbine tokenize --chat` with Qwen3's tokenizer folder, and the
// chat_template / chat_template_kwargs / tools request fields of the server, against the
// reference renderer (@huggingface/jinja through tests/tools/chat/render_templates.mjs) and the
// reference tokenizer (tokenizers.js through tests/tools/hf_tokenize.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import OpenAI from 'openai';
import { startServer, SHARED, MODEL, MODEL_NAME } from './server.mjs';

const BIN = process.env.TURBINE_BIN;
const TOOLS = path.resolve('../tools');
const QWEN3 = path.join(SHARED, 'tokenizers/qwen3');

let dir;     // temp folder: qwen3/{tokenizer.json, tokenizer_config.json}, case files
let tokDir;
let template;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turbine-chat-'));
  tokDir = path.join(dir, 'qwen3');
  fs.mkdirSync(tokDir);
  fs.writeFileSync(path.join(tokDir, 'tokenizer.json'),
    zlib.gunzipSync(fs.readFileSync(path.join(QWEN3, 'tokenizer.json.gz'))));
  fs.copyFileSync(path.join(QWEN3, 'tokenizer_config.json'), path.join(tokDir, 'tokenizer_config.json'));
  template = JSON.parse(fs.readFileSync(path.join(QWEN3, 'tokenizer_config.json'), 'utf8')).chat_template;
  for (const sub of ['chat', '.']) {
    const mod = path.join(TOOLS, sub, 'node_modules');
    if (!fs.existsSync(mod)) {
      execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: path.join(TOOLS, sub) });
    }
  }
});
after(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

// One run of `turbine tokenize` over JSON lines; returns one parsed object per line.
function tokenize(args, lines) {
  const r = spawnSync(BIN, ['tokenize', ...args], { input: lines.map((l) => JSON.stringify(l)).join('\n') + '\n' });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout.toString().trim().split('\n').map((l) => JSON.parse(l));
}

// The reference: the same context transformers' apply_chat_template builds (tools null when none;
// Qwen3 has no bos_token, so none is passed).
function reference(cases) {
  const file = path.join(dir, 'cases.json');
  const out = path.join(dir, 'out.json');
  fs.writeFileSync(file, JSON.stringify({
    cases: cases.map((c) => ({
      template,
      context: {
        messages: c.messages, tools: c.tools ?? null, add_generation_prompt: c.add_generation_prompt ?? true,
        eos_token: '<|im_end|>', ...(c.kwargs ?? {}),
      },
    })),
  }));
  execFileSync('node', [path.join(TOOLS, 'chat/render_templates.mjs'), file, out]);
  return JSON.parse(fs.readFileSync(out, 'utf8')).map((r) => {
    assert.ok(r.ok, r.error);
    return r.output;
  });
}

function referenceIds(texts) {
  const r = spawnSync('node', [path.join(TOOLS, 'hf_tokenize.mjs'), path.join(tokDir, 'tokenizer.json'),
    path.join(tokDir, 'tokenizer_config.json')], { input: texts.map((t) => JSON.stringify(t)).join('\n') + '\n' });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout.toString().trim().split('\n').map((l) => JSON.parse(l).ids);
}

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'Current weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string', description: 'City name' }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city'] },
  },
};
const searchTool = { type: 'function', function: { name: 'search', parameters: { type: 'object', properties: { q: { type: 'string' } } } } };

const CASES = [
  { messages: [{ role: 'user', content: 'Hello!' }] },
  { messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: '2+2?' }] },
  { messages: [{ role: 'user', content: 'Explain BPE briefly.' }], kwargs: { enable_thinking: false } },
  { messages: [{ role: 'user', content: 'Hello' }, { role: 'assistant', content: '<think>\nhm\n</think>\n\nHi there' }], add_generation_prompt: false },
  { messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool, searchTool] },
  {
    messages: [
      { role: 'system', content: 'Use tools when useful.' },
      { role: 'user', content: 'Weather in Paris and in Oslo?' },
      {
        role: 'assistant', content: '', reasoning_content: 'Two cities, two calls.', tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris', unit: 'c' } } },
          { id: 'c2', type: 'function', function: { name: 'get_weather', arguments: { city: 'Oslo' } } }],
      },
      { role: 'tool', content: '{"temp": 21}', tool_call_id: 'c1' },
      { role: 'tool', content: '{"temp": 4}', tool_call_id: 'c2' },
    ],
    tools: [weatherTool],
    kwargs: { enable_thinking: false },
  },
];

test('turbine tokenize --chat renders the Qwen3 template like @huggingface/jinja and encodes like tokenizers.js', () => {
  const got = tokenize(['--chat', '--tokenizer', tokDir], CASES);
  const want = reference(CASES);
  const wantIds = referenceIds(want);
  for (let i = 0; i < CASES.length; ++i) {
    assert.equal(got[i].error, undefined, `case ${i}: ${got[i].error}`);
    assert.equal(got[i].prompt, want[i], `case ${i}`);
    assert.deepEqual(got[i].ids, wantIds[i], `case ${i}`);
  }
  assert.match(got[2].prompt, /<think>\n\n<\/think>\n\n$/);  // enable_thinking=false
  assert.match(got[4].prompt, /<tools>\n\{"type": "function", "function": \{"name": "get_weather"/);
});

test('turbine tokenize --chat: bad lines give errors and the next line is read', () => {
  const got = tokenize(['--chat', '--tokenizer', tokDir], [
    { messages: 'x' }, { messages: [{ role: 'user', content: 'a' }], kwargs: { messages: [] } },
    { messages: [{ role: 'user', content: 'ok' }], add_generation_prompt: 1 },
    { messages: [{ role: 'user', content: 'ok' }] }]);
  assert.match(got[0].error, /messages/);
  assert.match(got[1].error, /set by the server/);
  assert.match(got[2].error, /add_generation_prompt/);
  assert.equal(got[3].prompt, '<|im_start|>user\nok<|im_end|>\n<|im_start|>assistant\n');
  const noTemplate = spawnSync(BIN, ['tokenize', '--chat', '--tokenizer', path.join(SHARED, 'tokenizers/gpt2')], { input: '' });
  assert.equal(noTemplate.status, 2);
  assert.match(noTemplate.stderr.toString(), /no chat template/);
});

// The server's model (stories260K) has no template: the request brings Qwen3's.
let server;
test('server: chat_template, chat_template_kwargs and tools in /tokenize and /v1/chat/completions', async (t) => {
  server = await startServer();
  t.after(async () => { assert.equal(await server.stop(), 0, server.log()); });
  const post = async (route, body) => {
    const res = await fetch(`${server.base}${route}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  };
  // OpenAI clients send tool-call arguments as JSON text; the server parses it (as vLLM does),
  // so the template sees the object the reference gets.
  const c = CASES[5];
  const wire = c.messages.map((m) => (m.tool_calls
    ? { ...m, content: null, tool_calls: m.tool_calls.map((tc) => ({ ...tc, function: { ...tc.function, arguments: JSON.stringify(tc.function.arguments) } })) }
    : m));
  const [want] = reference([c]);
  const wantIds = tokenize(['--tokenizer', MODEL], [{ text: want }])[0].ids;
  const r = await post('/tokenize', {
    model: MODEL_NAME, messages: wire, tools: c.tools, tool_choice: 'auto', chat_template: template,
    chat_template_kwargs: c.kwargs,
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.deepEqual(r.json.tokens, wantIds);

  // continue_final_message leaves the assistant turn open.
  const contMessages = [{ role: 'user', content: 'Count to 3' }, { role: 'assistant', content: '1, 2,' }];
  const cont = await post('/tokenize', {
    messages: contMessages, chat_template: template, add_generation_prompt: false, continue_final_message: true,
  });
  assert.equal(cont.status, 200, JSON.stringify(cont.json));
  const [full] = reference([{ messages: contMessages, add_generation_prompt: false }]);
  const contText = full.slice(0, full.lastIndexOf('1, 2,') + '1, 2,'.length);
  assert.ok(contText.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n1, 2,'), contText);
  assert.deepEqual(cont.json.tokens, tokenize(['--tokenizer', MODEL], [{ text: contText }])[0].ids);

  const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'x', maxRetries: 0 });
  const done = await client.chat.completions.create({
    model: MODEL_NAME, messages: wire, tools: c.tools, max_tokens: 4, temperature: 0,
    // @ts-ignore vLLM extensions
    chat_template: template, chat_template_kwargs: { enable_thinking: false },
  });
  assert.equal(done.usage.prompt_tokens, wantIds.length);

  for (const [body, param] of [
    [{ chat_template: '{% if %}' }, 'chat_template'],
    [{ chat_template: 7 }, 'chat_template'],
    [{ chat_template_kwargs: [1] }, 'chat_template_kwargs'],
    [{ chat_template: template, chat_template_kwargs: { tools: [] } }, 'chat_template_kwargs'],
    [{ tools: c.tools, tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice'],
    [{ tools: [{ type: 'function' }] }, 'tools[0].function'],
    [{ continue_final_message: true }, 'continue_final_message'],
  ]) {
    const bad = await post('/v1/chat/completions', { model: MODEL_NAME, messages: [{ role: 'user', content: 'hi' }], ...body });
    assert.equal(bad.status, 400, JSON.stringify(body));
    assert.equal(bad.json.error.param, param, JSON.stringify(bad.json));
  }
});
