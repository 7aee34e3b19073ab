// Embeddings through the gateway with the official OpenAI Node SDK, in a 4.x release that asks
// for base64 and decodes every item as base64 unconditionally (so float arrays would come out as
// garbage) and in the current major. Both must decode to the emulator's own vectors, exactly.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import OpenAI4 from 'openai4';
import OpenAI from 'openai';

import { asFloat32, startStack, upstreamEmbeddings } from './harness.mjs';

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

for (const [name, SDK] of SDKS) {
  describe(`${name} embeddings`, () => {
    const client = () =>
      new SDK({ baseURL: `${stack.gateway}/v1`, apiKey: stack.key, maxRetries: 0, timeout: 30_000 });

    test('one string, default encoding, decodes to the emulator vector', async () => {
      const text = `the quick brown fox (${name})`;
      const response = await client().embeddings.create({ model: 'text-embedding-3-small', input: text });
      const [expected] = await upstreamEmbeddings(stack.emulator, text);
      assert.equal(response.object, 'list');
      assert.equal(response.data.length, 1);
      const [item] = response.data;
      assert.equal(item.index, 0);
      assert.ok(Array.isArray(item.embedding), 'the SDK hands back a number[]');
      assert.equal(item.embedding.length, expected.length);
      assert.equal(item.embedding.length, 2048);
      assert.deepEqual(item.embedding, asFloat32(expected));
      assert.ok(response.usage.prompt_tokens > 0);
      assert.equal(response.usage.total_tokens, response.usage.prompt_tokens);
    });

    test('three strings come back in order', async () => {
      const input = ['alpha', 'beta is longer than alpha', `gamma ${name}`];
      const response = await client().embeddings.create({ model: 'text-embedding-3-small', input });
      const expected = await upstreamEmbeddings(stack.emulator, input);
      assert.deepEqual(
        response.data.map((d) => d.index),
        [0, 1, 2],
      );
      for (let i = 0; i < input.length; i++) {
        assert.deepEqual(response.data[i].embedding, asFloat32(expected[i]), `item ${i}`);
      }
      assert.notDeepEqual(response.data[0].embedding, response.data[1].embedding);
    });
  });
}
