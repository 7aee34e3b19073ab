// OpenAI's Responses API through the gateway with the Vercel AI SDK: its OpenAI provider calls
// /v1/responses by default and parses every answer and stream event with strict schemas, so the
// gateway's filled-in response objects and OpenAI framing are what make these complete.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';

import { startStack } from './harness.mjs';

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

const model = () => createOpenAI({ baseURL: `${stack.gateway}/v1`, apiKey: stack.key })('gpt-4o');

describe('ai@5 with @ai-sdk/openai responses', () => {
  test('generateText completes', async () => {
    const result = await generateText({ model: model(), prompt: 'Hello from the AI SDK', maxRetries: 0 });
    assert.ok(result.text.includes('Hello from the AI SDK'), result.text);
    assert.equal(result.finishReason, 'stop');
    assert.ok(result.usage.inputTokens > 0);
    assert.ok(result.usage.outputTokens > 0);
    assert.ok(result.response.id.startsWith('resp_'));
  });

  test('streamText streams the text and finishes with usage', async () => {
    const result = streamText({ model: model(), prompt: '#chunks 6', maxRetries: 0 });
    const pieces = [];
    for await (const piece of result.textStream) pieces.push(piece);
    assert.ok(pieces.length > 1, `pieces: ${JSON.stringify(pieces)}`);
    assert.equal(pieces.join(''), 'w1 w2 w3 w4 w5 w6');
    assert.equal(await result.finishReason, 'stop');
    const usage = await result.usage;
    assert.equal(usage.outputTokens, 6);
  });
});
