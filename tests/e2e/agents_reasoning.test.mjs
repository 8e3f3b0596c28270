// The reasoning fixture (fixtures/chain_model.mjs: Qwen3's tokenizer and chat template, a model
// whose output is always "<think>I plan a greeting.</think>Hello there!") served by `turbine run`
// with the parsers auto-detected from the template: reasoning_content split from content in chat
// (unary, streaming, a template that opens <think> in the prompt), the Responses reasoning item,
// Anthropic thinking blocks, and thinking/enable_thinking reaching the template.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startServer, SHARED } from './server.mjs';
import { writeChainModel, CHAIN_REASONING, CHAIN_CONTENT } from './fixtures/chain_model.mjs';

const NAME = 'chain';
let dir;
let server;
let openai;
let anthropic;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turbine-chain-'));
  const model = writeChainModel(path.join(dir, 'chain'), path.join(SHARED, 'tokenizers/qwen3'));
  server = await startServer([], {}, model, NAME);
  openai = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: server.base, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  if (server) assert.equal(await server.stop(), 0, server.log());
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const ask = [{ role: 'user', content: 'Greet me.' }];

test('the parsers were detected from the chat template', () => {
  assert.match(server.log(), /tool-call parser hermes, reasoning parser think/);
});

test('chat: reasoning_content is split from content, unary and streamed', async () => {
  const r = await openai.chat.completions.create({ model: NAME, messages: ask, max_tokens: 32 });
  const m = r.choices[0].message;
  assert.equal(m.reasoning_content, CHAIN_REASONING);
  assert.equal(m.content, CHAIN_CONTENT);
  assert.equal(r.choices[0].finish_reason, 'stop');

  const stream = await openai.chat.completions.create({
    model: NAME, messages: ask, max_tokens: 32, stream: true,
  });
  let reasoning = '';
  let content = '';
  let reasoningChunks = 0;
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta ?? {};
    if (d.reasoning_content) { reasoning += d.reasoning_content; ++reasoningChunks; }
    if (d.content) {
      assert.equal(reasoning, CHAIN_REASONING, 'content only after the reasoning ended');
      content += d.content;
    }
    assert.ok(!(d.content ?? '').includes('think>'), 'markup never reaches content');
  }
  assert.equal(reasoning, CHAIN_REASONING);
  assert.equal(content, CHAIN_CONTENT);
  assert.ok(reasoningChunks > 1, 'reasoning streams in increments');
});

test('a template that opens <think> in the prompt, and enable_thinking false', async () => {
  // DeepSeek-R1 style: the generation prompt ends inside the reasoning block.
  const template = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant: <think>\n";
  const r = await openai.chat.completions.create({
    model: NAME, messages: ask, max_tokens: 32, chat_template: template,
  });
  assert.equal(r.choices[0].message.reasoning_content, CHAIN_REASONING);
  assert.equal(r.choices[0].message.content, CHAIN_CONTENT);

  const off = await openai.chat.completions.create({
    model: NAME, messages: ask, max_tokens: 32, chat_template_kwargs: { enable_thinking: false },
  });
  assert.equal(off.choices[0].message.content, CHAIN_CONTENT);
  // Qwen3's template closes an empty think block in the prompt when thinking is off.
  const on = await openai.chat.completions.create({ model: NAME, messages: ask, max_tokens: 32 });
  assert.ok(off.usage.prompt_tokens > on.usage.prompt_tokens, 'enable_thinking reached the template');
});

test('Responses: a reasoning item then the message, unary and streamed', async () => {
  const r = await openai.responses.create({ model: NAME, input: 'Greet me.', max_output_tokens: 32 });
  assert.equal(r.output[0].type, 'reasoning');
  assert.equal(r.output[0].content[0].text, CHAIN_REASONING);
  assert.equal(r.output[1].type, 'message');
  assert.equal(r.output_text, CHAIN_CONTENT);

  const stream = await openai.responses.create({
    model: NAME, input: 'Greet me.', max_output_tokens: 32, stream: true,
  });
  let reasoning = '';
  let text = '';
  for await (const ev of stream) {
    if (ev.type === 'response.reasoning_text.delta') reasoning += ev.delta;
    if (ev.type === 'response.output_text.delta') text += ev.delta;
  }
  assert.equal(reasoning, CHAIN_REASONING);
  assert.equal(text, CHAIN_CONTENT);
});

test('Anthropic: a thinking block then text; thinking disabled reaches the template', async () => {
  const msg = await anthropic.messages.create({ model: NAME, max_tokens: 32, messages: ask });
  assert.deepEqual(msg.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(msg.content[0].thinking, CHAIN_REASONING);
  assert.equal(msg.content[1].text, CHAIN_CONTENT);
  assert.equal(msg.stop_reason, 'end_turn');

  const stream = anthropic.messages.stream({ model: NAME, max_tokens: 32, messages: ask });
  let thinking = '';
  stream.on('thinking', (delta) => { thinking += delta; });
  const final = await stream.finalMessage();
  assert.equal(thinking, CHAIN_REASONING);
  assert.equal(final.content[1].text, CHAIN_CONTENT);

  const plain = await anthropic.messages.countTokens({ model: NAME, messages: ask });
  const disabled = await anthropic.messages.countTokens({
    model: NAME, messages: ask, thinking: { type: 'disabled' },
  });
  assert.ok(disabled.input_tokens > plain.input_tokens, 'enable_thinking=false adds the empty block');
});
