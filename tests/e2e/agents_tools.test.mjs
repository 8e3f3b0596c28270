// Forced tool calls end to end on stories260K: tool_choice "required" and named functions are
// enforced by a grammar built from the tools' parameter schemas (structured outputs), so even a
// tiny model makes valid calls. Through the official `openai` client (chat round trip; Responses
// unary and streaming with previous_response_id), `@anthropic-ai/sdk` (create and stream) and the
// Vercel AI SDK's generateText.
//
// Every call assertion here depends on the engine enforcing SamplingParams::constraint (the
// frontend sets it from tool_choice, frontend/constraint_plan.h): without enforcement the tiny
// model writes stories, not calls. Token limits leave room for the grammar's bounded whitespace
// (up to 8 characters per JSON separator) and, with parallel calls allowed, a few calls.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { generateText, jsonSchema, tool } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { startServer, MODEL_NAME } from './server.mjs';

let server;
let openai;
let anthropic;

before(async () => {
  server = await startServer();
  openai = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: server.base, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { assert.equal(await server.stop(), 0, server.log()); });

const CITY = {
  type: 'object',
  properties: { city: { type: 'string', enum: ['Paris', 'London', 'Tokyo'] } },
  required: ['city'],
  additionalProperties: false,
};
const UNITS = {
  type: 'object',
  properties: { unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
  required: ['unit'],
  additionalProperties: false,
};
const chatTools = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: CITY } },
  { type: 'function', function: { name: 'set_units', description: 'Temperature units', parameters: UNITS } },
];

function checkCall(name, args) {
  assert.ok(['get_weather', 'set_units'].includes(name), name);
  const a = JSON.parse(args);
  if (name === 'get_weather') assert.ok(CITY.properties.city.enum.includes(a.city), args);
  else assert.ok(UNITS.properties.unit.enum.includes(a.unit), args);
  return a;
}

test('openai chat: required -> tool_calls -> tool message -> answer', async () => {
  const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const r = await openai.chat.completions.create({
    model: MODEL_NAME, messages, tools: chatTools, tool_choice: 'required', max_tokens: 256,
    temperature: 0,
  });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.ok(c.message.tool_calls.length >= 1);
  for (const call of c.message.tool_calls) {
    assert.match(call.id, /^call_/);
    assert.equal(call.type, 'function');
    checkCall(call.function.name, call.function.arguments);
  }
  messages.push(c.message);
  for (const call of c.message.tool_calls) {
    messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify({ temperature: 21 }) });
  }
  const answer = await openai.chat.completions.create({
    model: MODEL_NAME, messages, tools: chatTools, tool_choice: 'none', max_tokens: 16, temperature: 0,
  });
  assert.equal(typeof answer.choices[0].message.content, 'string');
  assert.ok(answer.choices[0].message.content.length > 0);
  assert.equal(answer.choices[0].message.tool_calls ?? undefined, undefined);
});

test('openai chat: a named function, unary and streamed; parallel_tool_calls false', async () => {
  const named = { type: 'function', function: { name: 'set_units' } };
  const r = await openai.chat.completions.create({
    model: MODEL_NAME, messages: [{ role: 'user', content: 'Use celsius.' }], tools: chatTools,
    tool_choice: named, max_tokens: 128, temperature: 0,
  });
  const calls = r.choices[0].message.tool_calls;
  assert.equal(calls.length, 1);
  assert.equal(calls[0].function.name, 'set_units');
  checkCall('set_units', calls[0].function.arguments);

  const stream = await openai.chat.completions.create({
    model: MODEL_NAME, messages: [{ role: 'user', content: 'Use celsius.' }], tools: chatTools,
    tool_choice: named, max_tokens: 128, temperature: 0, stream: true,
  });
  let id = '', name = '', args = '', finish = '';
  for await (const chunk of stream) {
    const ch = chunk.choices[0];
    for (const t of ch?.delta?.tool_calls ?? []) {
      assert.equal(t.index, 0);
      if (t.id) { id = t.id; name = t.function.name; }
      args += t.function?.arguments ?? '';
    }
    if (ch?.finish_reason) finish = ch.finish_reason;
  }
  assert.match(id, /^call_/);
  assert.equal(name, 'set_units');
  assert.equal(args, calls[0].function.arguments);  // greedy: the same call
  assert.equal(finish, 'tool_calls');

  const one = await openai.chat.completions.create({
    model: MODEL_NAME, messages: [{ role: 'user', content: 'Weather everywhere?' }], tools: chatTools,
    tool_choice: 'required', parallel_tool_calls: false, max_tokens: 256, temperature: 0.9, seed: 2,
  });
  assert.equal(one.choices[0].message.tool_calls.length, 1);
});

test('Responses: a function call, its output through previous_response_id, streamed', async () => {
  const tools = [{ type: 'function', name: 'get_weather', description: 'Weather', parameters: CITY, strict: true }];
  const r = await openai.responses.create({
    model: MODEL_NAME, input: 'Weather in Tokyo?', tools, tool_choice: 'required', max_output_tokens: 256,
    temperature: 0,
  });
  const call = r.output.find((o) => o.type === 'function_call');
  assert.ok(call, JSON.stringify(r.output));
  assert.equal(call.name, 'get_weather');
  checkCall(call.name, call.arguments);
  assert.ok(call.call_id);

  const stream = await openai.responses.create({
    model: MODEL_NAME, previous_response_id: r.id, tools, max_output_tokens: 16, temperature: 0,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temperature": 18}' }],
    stream: true,
  });
  const types = [];
  let done;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.completed' || ev.type === 'response.incomplete') done = ev.response;
  }
  assert.equal(types[0], 'response.created');
  assert.ok(done.usage.input_tokens > r.usage.input_tokens, 'the call and its output were in the prompt');

  const streamedCall = await openai.responses.create({
    model: MODEL_NAME, input: 'Weather in Tokyo?', tools, tool_choice: { type: 'function', name: 'get_weather' },
    max_output_tokens: 256, temperature: 0, stream: true,
  });
  let args = '';
  let doneArgs;
  for await (const ev of streamedCall) {
    if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
    if (ev.type === 'response.function_call_arguments.done') doneArgs = ev.arguments;
  }
  assert.equal(doneArgs, args);
  checkCall('get_weather', args);
});

test('Anthropic: messages.create and .stream with tools', async () => {
  const tools = [
    { name: 'get_weather', description: 'Weather in a city', input_schema: CITY },
    { name: 'set_units', description: 'Units', input_schema: UNITS },
  ];
  const msg = await anthropic.messages.create({
    model: MODEL_NAME, max_tokens: 256, tools, tool_choice: { type: 'any' },
    messages: [{ role: 'user', content: 'Weather in London?' }], temperature: 0,
  });
  assert.equal(msg.stop_reason, 'tool_use');
  const use = msg.content.find((b) => b.type === 'tool_use');
  assert.ok(use, JSON.stringify(msg.content));
  assert.match(use.id, /^toolu_/);
  checkCall(use.name, JSON.stringify(use.input));

  // The result goes back as a tool_result block; the answer is text.
  const answer = await anthropic.messages.create({
    model: MODEL_NAME, max_tokens: 12, tools, temperature: 0,
    messages: [
      { role: 'user', content: 'Weather in London?' },
      { role: 'assistant', content: msg.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '12 degrees' }] },
    ],
    tool_choice: { type: 'none' },
  });
  assert.equal(answer.content[0].type, 'text');

  const stream = anthropic.messages.stream({
    model: MODEL_NAME, max_tokens: 256, tools, tool_choice: { type: 'tool', name: 'get_weather' },
    messages: [{ role: 'user', content: 'Weather in London?' }], temperature: 0,
  });
  let json = '';
  stream.on('inputJson', (delta) => { json += delta; });
  const final = await stream.finalMessage();
  const streamed = final.content.find((b) => b.type === 'tool_use');
  assert.equal(streamed.name, 'get_weather');
  assert.deepEqual(JSON.parse(json), streamed.input);
  checkCall('get_weather', JSON.stringify(streamed.input));
  assert.equal(final.stop_reason, 'tool_use');
});

test('Vercel AI SDK: generateText with tools', async () => {
  const provider = createOpenAICompatible({ name: 'turbine', baseURL: `${server.base}/v1`, apiKey: 'unused' });
  const seen = [];
  const result = await generateText({
    model: provider.chatModel(MODEL_NAME),
    prompt: 'What is the weather in Paris?',
    maxOutputTokens: 256,
    temperature: 0,
    toolChoice: 'required',
    tools: {
      get_weather: tool({
        description: 'Weather in a city',
        inputSchema: jsonSchema(CITY),
        execute: async ({ city }) => { seen.push(city); return { city, temperature: 21 }; },
      }),
    },
  });
  assert.ok(result.toolCalls.length >= 1, JSON.stringify(result.response?.messages ?? result));
  assert.equal(result.toolCalls[0].toolName, 'get_weather');
  assert.ok(CITY.properties.city.enum.includes(result.toolCalls[0].input.city));
  assert.deepEqual(result.toolResults.map((r) => r.output.temperature), seen.map(() => 21));
  assert.equal(result.finishReason, 'tool-calls');
});
