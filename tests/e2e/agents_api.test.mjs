// Issue 20 through real clients against `turbine run` on stories260K, for everything that needs
// no forced tool call: n > 1 (indexed, interleaved, seeded, prompt computed once), best_of,
// logit_bias, the Responses API (unary, streaming, previous_response_id, GET/DELETE), Anthropic
// Messages (unary, streaming, count_tokens) with x-api-key, and bad input in each protocol's own
// error shape while the server keeps serving. Forced tool calls: agents_tools.test.mjs; the
// reasoning fixture: agents_reasoning.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startServer, metric, MODEL_NAME } from './server.mjs';

const KEY = 'sk-agents';
let server;
let openai;
let anthropic;

before(async () => {
  server = await startServer(['--api-key', KEY]);
  openai = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: KEY, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: server.base, apiKey: KEY, maxRetries: 0 });
});
after(async () => { assert.equal(await server.stop(), 0, server.log()); });

async function post(path, body, headers = { authorization: `Bearer ${KEY}` }) {
  const r = await fetch(`${server.base}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

// A prompt no earlier request shared a block with: its prefix-cache hits are the group's own.
function freshPrompt() {
  return `Request ${Math.random().toString(36).slice(2)}. Once upon a time there was a little girl ` +
    'who liked to play in the park with her dog and her friends every day after school.';
}

test('n: 4 gives four indexed choices, the prompt is computed once, seeds reproduce', async () => {
  const messages = [{ role: 'user', content: freshPrompt() }];
  const hits0 = await metric(server.base, 'turbine_engine_prefix_cache_hit_tokens_total');
  const r = await openai.chat.completions.create({
    model: MODEL_NAME, messages, n: 4, max_tokens: 16, temperature: 1, seed: 11,
  });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2, 3]);
  for (const c of r.choices) assert.ok(c.message.content.length > 0);
  assert.ok(new Set(r.choices.map((c) => c.message.content)).size >= 2, 'choice k samples with seed + k');
  const hits = await metric(server.base, 'turbine_engine_prefix_cache_hit_tokens_total') - hits0;
  // Choices 1..3 start on choice 0's cached prompt blocks (16 positions each; the last partial
  // block and the prompt's last token are recomputed).
  const P = r.usage.prompt_tokens;
  assert.equal(hits, 3 * Math.floor((P - 1) / 16) * 16, `prompt ${P} tokens`);
  assert.ok(P > 32);

  const again = await openai.chat.completions.create({
    model: MODEL_NAME, messages, n: 4, max_tokens: 16, temperature: 1, seed: 11,
  });
  assert.deepEqual(again.choices.map((c) => c.message.content), r.choices.map((c) => c.message.content));
});

test('n: 4 streams interleaved chunks of every index', async () => {
  const stream = await openai.chat.completions.create({
    model: MODEL_NAME, messages: [{ role: 'user', content: freshPrompt() }], n: 4, max_tokens: 12,
    temperature: 1, seed: 3, ignore_eos: true, stream: true,
  });
  const order = [];
  const text = ['', '', '', ''];
  const finish = [];
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      if (c.delta?.content) { order.push(c.index); text[c.index] += c.delta.content; }
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  }
  assert.deepEqual([...new Set(order)].sort(), [0, 1, 2, 3]);
  let switches = 0;
  for (let i = 1; i < order.length; ++i) if (order[i] !== order[i - 1]) ++switches;
  assert.ok(switches >= 8, `choices interleave (${order.join(',')})`);
  assert.deepEqual(finish, ['length', 'length', 'length', 'length']);
  for (const t of text) assert.ok(t.length > 0);
});

test('best_of returns the n best and counts every sequence; logit_bias forces a token', async () => {
  const best = await openai.completions.create({
    model: MODEL_NAME, prompt: 'Once upon a time', n: 1, best_of: 3, max_tokens: 8,
    temperature: 1, seed: 5, ignore_eos: true,
  });
  assert.equal(best.choices.length, 1);
  assert.equal(best.choices[0].index, 0);
  assert.equal(best.usage.completion_tokens, 24);

  const tok = await post('/tokenize', { model: MODEL_NAME, prompt: ' the', add_special_tokens: false });
  const the = tok.body.tokens.at(-1);
  const forced = await openai.completions.create({
    model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 5, temperature: 0,
    logit_bias: { [the]: 100 },
  });
  assert.equal(forced.choices[0].text, ' the the the the the');
  const chat = await openai.chat.completions.create({
    model: MODEL_NAME, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3, temperature: 0.8,
    seed: 1, logit_bias: { [the]: 100 },
  });
  assert.equal(chat.choices[0].message.content.trim(), 'the the the');
});

test('Responses API: unary, streaming, previous_response_id, GET and DELETE', async () => {
  const first = await openai.responses.create({
    model: MODEL_NAME, input: 'Tell me a story.', instructions: 'Be brief.', max_output_tokens: 12,
    temperature: 0,
  });
  assert.match(first.id, /^resp_/);
  assert.equal(first.object, 'response');
  assert.ok(['completed', 'incomplete'].includes(first.status));
  assert.ok(first.output_text.length > 0);
  assert.ok(first.usage.input_tokens > 0 && first.usage.output_tokens > 0);

  const stream = await openai.responses.create({
    model: MODEL_NAME, input: 'And then?', previous_response_id: first.id, max_output_tokens: 12,
    temperature: 0, stream: true,
  });
  const types = [];
  let text = '';
  let done;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed' || ev.type === 'response.incomplete') done = ev.response;
  }
  assert.equal(types[0], 'response.created');
  assert.ok(types.includes('response.output_item.added'));
  assert.ok(types.includes('response.output_text.done'));
  assert.equal(done.output_text ?? done.output[0].content[0].text, text);
  assert.equal(done.previous_response_id, first.id);
  // The follow-up's prompt held the first turn: more input tokens than the first request.
  assert.ok(done.usage.input_tokens > first.usage.input_tokens);

  const got = await openai.responses.retrieve(first.id);
  assert.equal(got.id, first.id);
  assert.equal(got.output_text, first.output_text);
  const del = await openai.responses.delete(first.id);
  assert.equal(del?.deleted ?? true, true);
  await assert.rejects(openai.responses.retrieve(first.id), (e) => e.status === 404);

  const unstored = await openai.responses.create({
    model: MODEL_NAME, input: 'x', max_output_tokens: 2, store: false,
  });
  await assert.rejects(openai.responses.retrieve(unstored.id), (e) => e.status === 404);
});

test('Anthropic Messages: create, stream, count_tokens, x-api-key', async () => {
  const msg = await anthropic.messages.create({
    model: MODEL_NAME, max_tokens: 12, system: 'You tell stories.',
    messages: [{ role: 'user', content: 'Tell me a story.' }], temperature: 0,
  });
  assert.match(msg.id, /^msg_/);
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.content[0].type, 'text');
  assert.ok(['end_turn', 'max_tokens'].includes(msg.stop_reason));
  assert.ok(msg.usage.input_tokens > 0);

  const stream = anthropic.messages.stream({
    model: MODEL_NAME, max_tokens: 12, system: 'You tell stories.',
    messages: [{ role: 'user', content: 'Tell me a story.' }], temperature: 0,
  });
  const events = [];
  stream.on('streamEvent', (e) => events.push(e.type));
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, msg.content[0].text);
  assert.equal(events[0], 'message_start');
  assert.equal(events.at(-1), 'message_stop');

  // stop_sequences: the output ends before the sequence, and the sequence is named.
  const full = msg.content[0].text;
  const words = full.trim().split(' ');
  if (words.length >= 3) {
    const stop = ' ' + words[2];
    const cut = await anthropic.messages.create({
      model: MODEL_NAME, max_tokens: 12, system: 'You tell stories.',
      messages: [{ role: 'user', content: 'Tell me a story.' }], temperature: 0,
      stop_sequences: [stop],
    });
    assert.equal(cut.stop_reason, 'stop_sequence');
    assert.equal(cut.stop_sequence, stop);
    assert.equal(cut.content[0].text, full.slice(0, full.indexOf(stop)));
  }

  const count = await anthropic.messages.countTokens({
    model: MODEL_NAME, messages: [{ role: 'user', content: 'Tell me a story.' }],
  });
  assert.ok(count.input_tokens > 3);

  const noKey = await post('/v1/messages', { model: MODEL_NAME, max_tokens: 4, messages: [] }, {});
  assert.equal(noKey.status, 401);
  assert.equal(noKey.body.type, 'error');
  assert.equal(noKey.body.error.type, 'authentication_error');
});

test('bad input gets each protocol\'s error shape and the server keeps serving', async () => {
  const chat = (extra) => post('/v1/chat/completions', {
    model: MODEL_NAME, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ...extra,
  });
  const weather = {
    type: 'function',
    function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
  };
  let r = await chat({ n: 17 });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.param, 'n');
  assert.equal(r.body.error.type, 'invalid_request_error');
  r = await chat({ tools: [weather], tool_choice: { type: 'function', function: { name: 'nope' } } });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.param, 'tool_choice');
  assert.match(r.body.error.message, /nope/);
  r = await chat({
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', required: 'city' } } }],
  });
  assert.equal(r.status, 400);
  assert.match(r.body.error.param, /^tools\[0\]\.function\.parameters/);
  r = await chat({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'string' } } }] });
  assert.equal(r.status, 400);
  r = await chat({ logit_bias: { 99999: 1 } });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.param, 'logit_bias');

  r = await post('/v1/responses', { model: MODEL_NAME, input: 'x', previous_response_id: 'resp_missing' });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, 'previous_response_not_found');
  assert.equal(r.body.error.param, 'previous_response_id');
  r = await post('/v1/responses', {
    model: MODEL_NAME, input: 'x', tools: [{ type: 'function', name: 'f' }],
    tool_choice: { type: 'function', name: 'g' },
  });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.param, 'tool_choice');

  await assert.rejects(
    anthropic.messages.create({ model: MODEL_NAME, messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e.status === 400 && e.error?.type === 'error' && e.error?.error?.type === 'invalid_request_error'
      && /max_tokens/.test(e.error.error.message));
  r = await post('/v1/messages', {
    model: MODEL_NAME, max_tokens: 4, messages: [{ role: 'user', content: 'hi' }],
    tools: [{ name: 'f', input_schema: { type: 'object' } }], tool_choice: { type: 'tool', name: 'g' },
  }, { 'x-api-key': KEY });
  assert.equal(r.status, 400);
  assert.equal(r.body.type, 'error');
  assert.equal(r.body.error.type, 'invalid_request_error');
  r = await post('/v1/messages', { model: 'nope', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] },
    { 'x-api-key': KEY });
  assert.equal(r.status, 404);
  assert.equal(r.body.error.type, 'not_found_error');

  const health = await fetch(`${server.base}/health`);
  assert.equal(health.status, 200);
  const ok = await openai.chat.completions.create({
    model: MODEL_NAME, messages: [{ role: 'user', content: 'Still there?' }], max_tokens: 4,
  });
  assert.equal(ok.choices.length, 1);
});
