// Drives a mole server with the official openai npm package (installed by the Go test) and
// prints what it saw as one JSON object for the test to check.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.MOLE_BASE_URL + '/v1', apiKey: process.env.MOLE_API_KEY, maxRetries: 0 });
const model = process.env.MOLE_MODEL;
const out = {};

async function collect(stream, pick) {
  const r = { text: '', chunks: 0, finish: null, usage: null, role: null, object: null };
  for await (const ch of stream) {
    r.object = ch.object;
    if (ch.usage) r.usage = ch.usage;
    for (const c of ch.choices) {
      if (c.delta && c.delta.role) r.role = c.delta.role;
      const t = pick(c);
      if (t) { r.text += t; r.chunks++; }
      if (c.finish_reason) r.finish = c.finish_reason;
    }
  }
  return r;
}

for (const [name, sampling] of [['greedy', { temperature: 0 }], ['seeded', { temperature: 0.8, seed: 42 }]]) {
  const chatReq = { model, messages: [{ role: 'user', content: 'Who made heaven and earth?' }], max_tokens: 24, ...sampling };
  const c = await client.chat.completions.create(chatReq);
  out['chat_' + name] = { text: c.choices[0].message.content, finish: c.choices[0].finish_reason, usage: c.usage, object: c.object, role: c.choices[0].message.role };
  out['chat_stream_' + name] = await collect(
    await client.chat.completions.create({ ...chatReq, stream: true, stream_options: { include_usage: true } }),
    (ch) => ch.delta && ch.delta.content);

  const compReq = { model, prompt: 'In the beginning', max_tokens: 24, ...sampling };
  const p = await client.completions.create(compReq);
  out['completion_' + name] = { text: p.choices[0].text, finish: p.choices[0].finish_reason, usage: p.usage, object: p.object };
  out['completion_stream_' + name] = await collect(
    await client.completions.create({ ...compReq, stream: true, stream_options: { include_usage: true } }),
    (ch) => ch.text);
}

const models = await client.models.list();
out.models = models.data.map((m) => m.id);

try {
  await client.completions.create({ model: 'no-such-model', prompt: 'a' });
  out.error = null;
} catch (e) {
  out.error = { status: e.status, code: e.code, param: e.param, type: e.type };
}
console.log(JSON.stringify(out));
