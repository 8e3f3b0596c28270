// Structured outputs on a reasoning model (issue 20): the constraint starts after the reasoning,
// so the model thinks first. The reasoning fixture (fixtures/chain_model.mjs: Qwen3's tokenizer
// and template, a model whose output is always "<think>I plan a greeting.</think>Hello there!")
// keeps its reasoning; after </think> it wants "Hello", which the grammar masks, so the content is
// whatever the grammar allows (greedy: the lowest allowed ids) and must parse and match the
// schema. Qwen3's template with thinking on (the output may open a block), a template that opens
// <think> in the prompt, and enable_thinking false (the prompt closes the block: constrained from
// the first token, no reasoning); response_format json_schema, streamed too, and tool_choice
// required and named.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, SHARED } from './server.mjs';
import { writeChainModel, CHAIN_REASONING } from './fixtures/chain_model.mjs';

const NAME = 'chain';
let dir;
let server;
let openai;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turbine-chain-'));
  const model = writeChainModel(path.join(dir, 'chain'), path.join(SHARED, 'tokenizers/qwen3'));
  server = await startServer([], {}, model, NAME);
  openai = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  if (server) assert.equal(await server.stop(), 0, server.log());
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const ask = [{ role: 'user', content: 'Greet me.' }];
const GREETINGS = ['hello', 'hi', 'hey'];
const schema = {
  type: 'object',
  properties: { greeting: { type: 'string', enum: GREETINGS }, excited: { type: 'boolean' } },
  required: ['greeting', 'excited'],
  additionalProperties: false,
};
const responseFormat = { type: 'json_schema', json_schema: { name: 'greeting', schema, strict: true } };

function assertMatches(content) {
  const v = JSON.parse(content);
  assert.deepEqual(Object.keys(v).sort(), ['excited', 'greeting']);
  assert.ok(GREETINGS.includes(v.greeting), content);
  assert.equal(typeof v.excited, 'boolean');
}

test('json_schema: the model reasons first, then the content matches the schema', async () => {
  const r = await openai.chat.completions.create({
    model: NAME, messages: ask, max_tokens: 64, temperature: 0, response_format: responseFormat,
  });
  const m = r.choices[0].message;
  assert.equal(m.reasoning_content, CHAIN_REASONING);
  assertMatches(m.content);
  assert.equal(r.choices[0].finish_reason, 'stop');
});

test('json_schema streamed: reasoning deltas, then JSON content', async () => {
  const stream = await openai.chat.completions.create({
    model: NAME, messages: ask, max_tokens: 64, temperature: 0, response_format: responseFormat,
    stream: true,
  });
  let reasoning = '';
  let content = '';
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta ?? {};
    if (d.reasoning_content) reasoning += d.reasoning_content;
    if (d.content) content += d.content;
  }
  assert.equal(reasoning, CHAIN_REASONING);
  assertMatches(content);
});

test('a template that opens <think> in the prompt; enable_thinking false constrains at once', async () => {
  const template = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant: <think>\n";
  const r = await openai.chat.completions.create({
    model: NAME, messages: ask, max_tokens: 64, temperature: 0, response_format: responseFormat,
    chat_template: template,
  });
  assert.equal(r.choices[0].message.reasoning_content, CHAIN_REASONING);
  assertMatches(r.choices[0].message.content);

  const off = await openai.chat.completions.create({
    model: NAME, messages: ask, max_tokens: 64, temperature: 0, response_format: responseFormat,
    chat_template_kwargs: { enable_thinking: false },
  });
  assert.ok(!off.choices[0].message.reasoning_content, 'no reasoning: the grammar applied at once');
  assertMatches(off.choices[0].message.content);
});

test('max_tokens spent inside the reasoning ends with length and no content', async () => {
  const r = await openai.chat.completions.create({
    model: NAME, messages: ask, max_tokens: 4, temperature: 0, response_format: responseFormat,
  });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.ok(!r.choices[0].message.content);
  assert.ok(CHAIN_REASONING.startsWith(r.choices[0].message.reasoning_content));
});

const tools = [{
  type: 'function',
  function: {
    name: 'greet',
    description: 'Greets the user.',
    parameters: {
      type: 'object',
      properties: { style: { type: 'string', enum: ['warm', 'brief'] } },
      required: ['style'],
      additionalProperties: false,
    },
  },
}];

test('tool_choice required and named: reasoning, then calls that match the tools', async () => {
  const r = await openai.chat.completions.create({
    model: NAME, messages: ask, max_tokens: 96, temperature: 0, tools, tool_choice: 'required',
    parallel_tool_calls: false,
  });
  const m = r.choices[0].message;
  assert.equal(m.reasoning_content, CHAIN_REASONING);
  assert.equal(m.tool_calls.length, 1);
  assert.equal(m.tool_calls[0].function.name, 'greet');
  assert.ok(['warm', 'brief'].includes(JSON.parse(m.tool_calls[0].function.arguments).style));
  assert.equal(r.choices[0].finish_reason, 'tool_calls');

  const named = await openai.chat.completions.create({
    model: NAME, messages: ask, max_tokens: 64, temperature: 0, tools,
    tool_choice: { type: 'function', function: { name: 'greet' } },
  });
  const n = named.choices[0].message;
  assert.equal(n.reasoning_content, CHAIN_REASONING);
  assert.equal(n.tool_calls.length, 1);
  assert.equal(n.tool_calls[0].function.name, 'greet');
  assert.ok(['warm', 'brief'].includes(JSON.parse(n.tool_calls[0].function.arguments).style));
});
