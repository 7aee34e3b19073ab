// Chat completions through the gateway with the official OpenAI Node SDK, a 4.x release and the
// current major: plain, streamed, and (4.x) the runTools helper, which appends the SDK's own
// message objects (with `parsed`, `refusal`, …) to the conversation it sends back.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import OpenAI4 from 'openai4';
import OpenAI from 'openai';

import { startStack } from './harness.mjs';

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

const SDKS = [
  ['openai@4.98.0', OpenAI4],
  ['openai@7.59.0', OpenAI],
];

const client = (SDK) =>
  new SDK({ baseURL: `${stack.gateway}/v1`, apiKey: stack.key, maxRetries: 0, timeout: 30_000 });

for (const [name, SDK] of SDKS) {
  describe(`${name} chat`, () => {
    test('a chat completion completes', async () => {
      const completion = await client(SDK).chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: `Hello from ${name}` }],
      });
      assert.equal(completion.object, 'chat.completion');
      const [choice] = completion.choices;
      assert.equal(choice.finish_reason, 'stop');
      assert.equal(typeof choice.message.content, 'string');
      assert.ok(choice.message.content.length > 0);
      assert.ok(choice.message.content.includes(`Hello from ${name}`));
      assert.equal(
        completion.usage.total_tokens,
        completion.usage.prompt_tokens + completion.usage.completion_tokens,
      );
    });

    test('a streamed chat completion arrives in chunks and finishes once', async () => {
      const stream = await client(SDK).chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'Count #chunks 5' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      const withChoices = chunks.filter((c) => c.choices.length > 0);
      const text = withChoices.map((c) => c.choices[0].delta.content ?? '').join('');
      assert.deepEqual(text.split(/\s+/).filter(Boolean), ['w1', 'w2', 'w3', 'w4', 'w5']);
      const finishes = withChoices.map((c) => c.choices[0].finish_reason).filter(Boolean);
      assert.deepEqual(finishes, ['stop']);
      const last = chunks.at(-1);
      assert.deepEqual(last.choices, []);
      assert.equal(last.usage.completion_tokens, 5);
    });
  });
}

describe('openai@4.98.0 runTools', () => {
  test('calls the tool and ends with an answer', async () => {
    const calls = [];
    const runner = client(OpenAI4).beta.chat.completions.runTools({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'What is the weather in Paris? use get_weather' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'The current weather for a city',
            parameters: {
              type: 'object',
              properties: { city: { type: 'string' } },
              required: ['city'],
            },
            function: async ({ city }) => {
              calls.push(city);
              return { city, temp: 20 };
            },
            parse: JSON.parse,
          },
        },
      ],
    });
    const content = await runner.finalContent();
    assert.equal(typeof content, 'string');
    assert.ok(content.length > 0);
    assert.equal(calls.length, 1, 'the model asked for get_weather once');
    assert.equal(typeof calls[0], 'string');
    const messages = runner.messages;
    assert.deepEqual(
      messages.map((m) => m.role),
      ['user', 'assistant', 'tool', 'assistant'],
    );
    assert.ok(messages[1].tool_calls?.length === 1);
  });
});
