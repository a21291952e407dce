import { z } from 'zod';
import { startSimulator, type Simulator } from '../src/sim';
import { fitsSchema, valueForSchema } from '../src/sim/schemaValue';
import { prng } from '../src/sim/prng';

/**
 * The simulator keeps its promise: any request with a schema it honours (json_schema; json_object
 * with a schema in the llama-cpp-python dialect) gets JSON valid against that schema, also for a
 * prompt it does not recognise, deterministically for seed and request. Validity is checked with
 * zod, from which the schemas are made, not with the simulator's own code.
 */
let sim: Simulator;
let llama: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 21 });
  llama = await startSimulator({ port: 0, seed: 21, dialect: 'llama-cpp-python' });
});
afterAll(async () => {
  await sim.close();
  await llama.close();
});

const schemas: Record<string, z.ZodType> = {
  weather: z.object({
    city: z.string(),
    celsius: z.number().min(-60).max(60),
    humidity: z.number().int().min(0).max(100),
    raining: z.boolean(),
    sky: z.enum(['clear', 'cloudy', 'overcast']),
  }),
  invoice: z.object({
    number: z.string().min(8).max(12),
    lines: z
      .array(z.object({ sku: z.string(), qty: z.number().int().positive(), price: z.number().nonnegative() }))
      .min(2)
      .max(4),
    notes: z.string().nullable(),
    tags: z.array(z.enum(['urgent', 'paid', 'draft'])).max(2),
  }),
  nested: z.object({
    matrix: z.array(z.array(z.number().int().min(1).max(9)).length(3)).min(1),
    meta: z.object({ version: z.literal(2), source: z.union([z.string(), z.number()]) }),
    stamp: z.string().datetime(),
  }),
};

async function chat(target: Simulator, body: Record<string, unknown>) {
  const res = await fetch(`${target.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'any-model',
      messages: [{ role: 'user', content: 'Tell me about the weather on Mars, in your own words.' }],
      ...body,
    }),
  });
  const json = (await res.json()) as { choices?: { message: { content: string } }[]; error?: unknown };
  return { status: res.status, json, content: json.choices?.[0]?.message.content };
}

test.each(Object.keys(schemas))(
  'json_schema "%s" with a prompt it does not recognise: valid JSON for that schema, same reply twice',
  async (name) => {
    const schema = z.toJSONSchema(schemas[name]!);
    const body = { response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } } };
    const a = await chat(sim, body);
    expect(a.status).toBe(200);
    expect(schemas[name]!.safeParse(JSON.parse(a.content!)).success).toBe(true);
    expect((await chat(sim, body)).content).toBe(a.content);
  },
);

test('llama-cpp-python dialect: json_object with a schema is honoured; json_schema is refused like 0.3.16 refuses it', async () => {
  const schema = z.toJSONSchema(schemas.invoice!);
  const ok = await chat(llama, { response_format: { type: 'json_object', schema } });
  expect(ok.status).toBe(200);
  expect(schemas.invoice!.safeParse(JSON.parse(ok.content!)).success).toBe(true);

  const refused = await chat(llama, {
    response_format: { type: 'json_schema', json_schema: { name: 'invoice', schema } },
  });
  expect(refused.status).toBe(500);
  expect(refused.json.error).toMatchObject({ type: 'internal_server_error', param: null, code: null });
  const message = (refused.json.error as { message: string }).message;
  expect(message).toMatch(/^1 validation error:/);
  expect(message).toContain("'loc': ('body', 'response_format', 'type')");
  expect(message).toContain("Input should be 'text' or 'json_object'");
});

test('JSON mode without a schema, unrecognised prompt: still a JSON object', async () => {
  const r = await chat(sim, { response_format: { type: 'json_object' } });
  expect(typeof JSON.parse(r.content!)).toBe('object');
});

test('the generator covers many draws of every schema, and its own checker agrees with zod', () => {
  for (const [name, s] of Object.entries(schemas)) {
    const schema = z.toJSONSchema(s) as Record<string, unknown>;
    for (let i = 0; i < 200; i++) {
      const value = valueForSchema(schema, prng(i));
      const parsed = s.safeParse(value);
      if (!parsed.success) throw new Error(`${name} draw ${i}: ${JSON.stringify(value)}`);
      expect(fitsSchema(value, schema)).toBe(true);
    }
    expect(fitsSchema({ unexpected: true }, schema)).toBe(false);
  }
});
