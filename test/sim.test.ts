import { z } from 'zod';
import { startSimulator, type Simulator } from '../src/sim';
import { answer, judge } from '../src/sim/answers';
import { decode, improve, rubrics } from '../src/sim/content';
import { requestLatencyMs } from '../src/sim/prng';
import {
  answerStrongTask,
  combineJudgements,
  decodeTask,
  encodeTask,
  improveTask,
  judgeTask,
  messagesFor,
  rubricsTask,
  type StructuredPrompt,
} from '../src/tasks';
import type { Slots } from '../src/tasks/template';

/** The simulator over real HTTP (fetch), plus its content functions directly where many samples are needed. */

interface Completion {
  object: string;
  model: string;
  system_fingerprint: string;
  choices: { message: { role: string; content: string }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

async function post(sim: Simulator, body: unknown, path = '/chat/completions'): Promise<Response> {
  return fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

function jsonSchemaBody(
  task: StructuredPrompt<unknown>,
  slots: Slots,
  model = 'sim-strong',
  temperature = 0.7,
) {
  return {
    model,
    temperature,
    messages: messagesFor(task, slots),
    response_format: {
      type: 'json_schema',
      json_schema: { name: task.name, schema: z.toJSONSchema(task.output), strict: true },
    },
  };
}

async function completion(sim: Simulator, body: unknown): Promise<Completion> {
  const res = await post(sim, body);
  expect(res.status).toBe(200);
  return (await res.json()) as Completion;
}

async function structured<O>(
  sim: Simulator,
  task: StructuredPrompt<O>,
  slots: Slots,
  model?: string,
): Promise<O> {
  const c = await completion(sim, jsonSchemaBody(task as StructuredPrompt<unknown>, slots, model));
  return task.output.parse(JSON.parse(c.choices[0]!.message.content));
}

async function control(sim: Simulator, path: string, body?: unknown): Promise<unknown> {
  const base = sim.url.replace(/\/v1$/, '');
  const res = await fetch(
    `${base}${path}`,
    body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) },
  );
  expect(res.status).toBe(200);
  return res.json();
}

const slotsFor: Record<string, Slots> = {
  codeclm_encode: {
    instruction: 'Write a Python function that removes duplicates from a list.',
    max_skills: '3',
  },
  codeclm_decode: {
    use_case: 'trip itinerary planning',
    skills: 'itinerary planning, budget estimation',
    count: '7',
    batch: '1',
  },
  codeclm_rubrics: {
    use_case: 'trip itinerary planning',
    skills: 'itinerary planning, budget estimation',
    count: '4',
  },
  codeclm_improve: {
    use_case: 'trip itinerary planning',
    action: 'Add a constraint that the answer must present the key points in a table.',
    instruction: 'Plan three days in Lisbon.',
  },
  codeclm_judge: {
    instruction: 'Plan three days in Lisbon.',
    answer_a: 'Day 1: Alfama and the castle. Day 2: Belém. Day 3: Sintra.',
    answer_b: 'It depends.',
  },
};

describe('simulator over HTTP', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ port: 0, seed: 7 });
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    await control(sim, '/_sim/reset', {});
  });

  test.each([encodeTask, decodeTask, rubricsTask, improveTask, judgeTask] as StructuredPrompt<unknown>[])(
    'json_schema $name returns schema-valid JSON',
    async (task) => {
      const c = await completion(sim, jsonSchemaBody(task, slotsFor[task.name]!));
      expect(c.object).toBe('chat.completion');
      expect(c.system_fingerprint).toBe('codeclm-sim');
      expect(c.choices[0]!.finish_reason).toBe('stop');
      expect(c.usage.total_tokens).toBe(c.usage.prompt_tokens + c.usage.completion_tokens);
      expect(c.usage.completion_tokens).toBeGreaterThan(0);
      const value = task.output.parse(JSON.parse(c.choices[0]!.message.content));
      if (task === decodeTask)
        expect(new Set((value as { instructions: string[] }).instructions).size).toBe(7);
      if (task === rubricsTask) expect((value as { rubrics: unknown[] }).rubrics).toHaveLength(4);
      if (task === encodeTask) expect((value as { skills: string[] }).skills.length).toBeLessThanOrEqual(3);
      if (task === improveTask)
        expect((value as { instruction: string }).instruction).toMatch(
          /^Plan three days in Lisbon\.\n.*table/,
        );
      expect(sim.requests().at(-1)).toMatchObject({ task: task.name, status: 200 });
    },
  );

  test('without json_schema the task is recognised from the prompt (also with an appended JSON instruction)', async () => {
    const messages = messagesFor(encodeTask, slotsFor.codeclm_encode!);
    messages[1]!.content +=
      '\n\nReply with only a JSON object that matches the JSON schema "codeclm_encode" below.\n{"type":"object"}';
    const c = await completion(sim, { model: 'm', messages, response_format: { type: 'json_object' } });
    expect(encodeTask.output.parse(JSON.parse(c.choices[0]!.message.content)).use_case).toBe(
      'software development',
    );
    expect(sim.requests().at(-1)!.task).toBe('codeclm_encode');
    // Anything else is an answer request: free text.
    const a = await completion(sim, {
      model: 'm',
      messages: messagesFor(answerStrongTask, { instruction: 'Plan three days in Lisbon.' }),
    });
    expect(a.choices[0]!.message.content).toMatch(/lisbon/i);
    expect(sim.requests().at(-1)!.task).toBe('answer');
  });

  test('same seed and request give the same reply; another seed may differ', async () => {
    const body = jsonSchemaBody(decodeTask as StructuredPrompt<unknown>, {
      ...slotsFor.codeclm_decode!,
      count: '12',
    });
    const a = await completion(sim, body);
    const b = await completion(sim, body);
    expect(b.choices[0]!.message.content).toBe(a.choices[0]!.message.content);
    const other = await startSimulator({ seed: 8 });
    try {
      const c = await completion(other, body);
      expect(c.choices[0]!.message.content).not.toBe(a.choices[0]!.message.content);
    } finally {
      await other.close();
    }
  });

  test('encode metadata follows the seed text', async () => {
    const enc = (instruction: string) => structured(sim, encodeTask, { instruction, max_skills: '3' });
    const coding = await Promise.all(
      [
        'Write a JavaScript function that sorts dates',
        'Write a Python script to rename files',
        'Write a SQL query that returns duplicates',
        'Explain what this regex does in my code',
      ].map(enc),
    );
    expect((await enc('Fix the bug in my Python function')).use_case).toBe('code debugging');
    const travel = await enc('Plan a one-week trip to Japan with hotel suggestions');
    const cooking = await enc('Give me a recipe for a vegan lasagna for dinner');
    const codingUseCases = coding.map((m) => m.use_case);
    expect(codingUseCases.filter((u) => u === 'software development').length).toBe(4);
    expect(travel.use_case).toMatch(/trip|travel/);
    expect(cooking.use_case).toMatch(/recipe|meal/);
    expect(new Set([codingUseCases[0], travel.use_case, cooking.use_case]).size).toBe(3);
    const one = await structured(sim, encodeTask, {
      instruction: 'Plan a one-week trip to Japan with hotel suggestions',
      max_skills: '1',
    });
    expect(one.skills).toHaveLength(1);
  });

  test('rpm cap answers 429 with Retry-After until a slot frees', async () => {
    const capped = await startSimulator({ rpm: 2, seed: 1 });
    try {
      const body = { model: 'm', messages: [{ role: 'user', content: 'hello' }] };
      expect((await post(capped, body)).status).toBe(200);
      expect((await post(capped, body)).status).toBe(200);
      const res = await post(capped, body);
      expect(res.status).toBe(429);
      const wait = Number(res.headers.get('retry-after'));
      expect(wait).toBeGreaterThanOrEqual(1);
      expect(wait).toBeLessThanOrEqual(60);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
      expect(capped.requests().at(-1)).toMatchObject({ status: 429, fault: 'rpm' });
    } finally {
      await capped.close();
    }
  });

  test('scripted faults are consumed in order by matching requests', async () => {
    await control(sim, '/_sim/script', [
      { status: 429, retryAfter: 2 },
      { status: 500 },
      { status: 503, model: 'only-this-model' },
      { reset: true },
      { malformed: 'fenced', task: 'encode' },
      { malformed: 'broken' },
      { truncate: true },
      {
        status: 400,
        code: 'context_length_exceeded',
        message: "This model's maximum context length is 8192 tokens",
      },
    ]);
    const body = jsonSchemaBody(encodeTask as StructuredPrompt<unknown>, slotsFor.codeclm_encode!);
    const r429 = await post(sim, body);
    expect(r429.status).toBe(429);
    expect(r429.headers.get('retry-after')).toBe('2');
    expect((await post(sim, body)).status).toBe(500);
    // The 503 waits for its model; the reset is next for this one.
    await expect(post(sim, body)).rejects.toThrow();
    expect((await post(sim, { ...body, model: 'only-this-model' })).status).toBe(503);
    const fenced = await completion(sim, body);
    expect(fenced.choices[0]!.message.content).toMatch(/^Sure[\s\S]*```json\n\{[\s\S]*```/);
    const broken = await completion(sim, body);
    expect(() => JSON.parse(broken.choices[0]!.message.content)).toThrow();
    const cut = await completion(sim, body);
    expect(cut.choices[0]!.finish_reason).toBe('length');
    const r400 = await post(sim, body);
    expect(r400.status).toBe(400);
    expect(((await r400.json()) as { error: { code: string } }).error.code).toBe('context_length_exceeded');
    expect((await completion(sim, body)).choices[0]!.finish_reason).toBe('stop');
    const log = (await control(sim, '/_sim/requests')) as {
      status: number;
      task: string;
      model: string;
      time: string;
    }[];
    expect(log.map((l) => l.status)).toEqual([429, 500, 0, 503, 200, 200, 200, 400, 200]);
    expect(log[0]).toMatchObject({ task: 'codeclm_encode', model: 'sim-strong' });
    expect(Date.parse(log[0]!.time)).not.toBeNaN();
  });

  test('bad scripts and bad requests are rejected with a reason', async () => {
    const base = sim.url.replace(/\/v1$/, '');
    const bad = await fetch(`${base}/_sim/script`, {
      method: 'POST',
      body: JSON.stringify([{ status: 200 }]),
    });
    expect(bad.status).toBe(400);
    expect((await post(sim, { messages: [] })).status).toBe(400);
    const models = (await (await fetch(`${sim.url}/models`)).json()) as { data: { id: string }[] };
    expect(models.data.length).toBeGreaterThan(0);
  });

  test('max_tokens cuts the reply with finish_reason "length"', async () => {
    const c = await completion(sim, {
      model: 'm',
      max_tokens: 5,
      messages: messagesFor(answerStrongTask, { instruction: 'Plan three days in Lisbon.' }),
    });
    expect(c.choices[0]!.finish_reason).toBe('length');
    expect(c.choices[0]!.message.content.length).toBeLessThanOrEqual(20);
  });

  test('random faults follow the seed', async () => {
    const statuses = async () => {
      const s = await startSimulator({ seed: 3, errorRate: 0.5 });
      try {
        const out: number[] = [];
        for (let i = 0; i < 20; i++)
          out.push((await post(s, { model: 'm', messages: [{ role: 'user', content: `q${i}` }] })).status);
        return out;
      } finally {
        await s.close();
      }
    };
    const a = await statuses();
    expect(await statuses()).toEqual(a);
    expect(a.filter((s) => s !== 200).length).toBeGreaterThan(3);
    expect(a.filter((s) => s === 200).length).toBeGreaterThan(3);
  });

  test('judge scores follow which answer is better, in both orders', async () => {
    const instruction =
      'Plan a budget trip to Mexico City for a student.\nAdditional requirement: the answer must present the key points in a table.';
    const good = answer(7, 'sim-strong', instruction);
    const bad = 'That is a good question, and the answer really depends on your situation.';
    const ab = await structured(sim, judgeTask, { instruction, answer_a: good, answer_b: bad });
    const ba = await structured(sim, judgeTask, { instruction, answer_a: bad, answer_b: good });
    expect(ab.score_a).toBeGreaterThan(ab.score_b + 3);
    expect(ba.score_b).toBeGreaterThan(ba.score_a + 3);
    // Position bias: the same answer in both slots scores at least as well first.
    const same = await structured(sim, judgeTask, { instruction, answer_a: good, answer_b: good });
    expect(same.score_a).toBeGreaterThanOrEqual(same.score_b);
  });
});

describe('simulator content gives the pipeline real signal', () => {
  const seed = 11;
  const basics = decode(
    seed,
    'business plan development',
    ['market research', 'financial forecasting'],
    120,
  ).instructions;
  const actions = rubrics(
    seed,
    'business plan development',
    ['market research', 'financial forecasting'],
    4,
  ).rubrics.map((r) => r.action);
  const gap = (instruction: string) => {
    const s = answer(seed, 'sim-strong', instruction);
    const t = answer(seed, 'sim-target', instruction);
    return combineJudgements(judge(seed, instruction, s, t), judge(seed, instruction, t, s)).gap;
  };
  const harder = (instruction: string, steps: number) => {
    let text = instruction;
    for (let i = 0; i < steps; i++)
      text = improve(seed, text, actions[(i + text.length) % actions.length]!).instruction;
    return text;
  };

  test('the target model falls behind as instructions get harder', () => {
    const meanGap = (steps: number) =>
      basics.map((b) => gap(harder(b, steps))).reduce((a, b) => a + b, 0) / basics.length;
    const coverage = (steps: number) =>
      basics.filter((b) => {
        const text = harder(b, steps);
        return (answer(seed, 'sim-target', text).match(/Requirement met/g) ?? []).length === steps;
      }).length / basics.length;
    expect(meanGap(3)).toBeGreaterThan(meanGap(0));
    expect(coverage(3)).toBeLessThan(coverage(1));
    expect(meanGap(0)).toBeGreaterThan(0); // the strong model is never worse on average
  });

  test('contrastive filtering with theta 3 keeps most at iteration 1, iterates on others, drops a few', () => {
    const kept: Record<string, number> = {};
    for (const b of basics) {
      let outcome = 'dropped';
      for (let it = 1; it <= 4; it++) {
        const g = gap(harder(b, it - 1));
        if (Math.abs(g) > 3) {
          outcome = `iteration ${it}`;
          break;
        }
      }
      kept[outcome] = (kept[outcome] ?? 0) + 1;
    }
    const n = basics.length;
    expect(kept['iteration 1']! / n).toBeGreaterThan(0.35);
    expect(
      ((kept['iteration 2'] ?? 0) + (kept['iteration 3'] ?? 0) + (kept['iteration 4'] ?? 0)) / n,
    ).toBeGreaterThan(0.15);
    expect((kept.dropped ?? 0) / n).toBeLessThan(0.25);
    expect(kept.dropped ?? 0).toBeGreaterThan(0);
  });
});

describe('simulated latency', () => {
  // The bench compares two pipelines sending the same requests in different orders; each request's
  // latency must depend on the request, not on its place in the stream.
  test('is fixed by the request and how often it was sent, not by arrival order', () => {
    const keys = Array.from({ length: 2000 }, (_, i) => 1_000_003 * (i + 1));
    const forward = keys.map((k) => requestLatencyMs(1000, k, 0));
    const backward = [...keys].reverse().map((k) => requestLatencyMs(1000, k, 0));
    expect(backward.reverse()).toEqual(forward);
    // A repeated request (a retry) waits a fresh time.
    expect(keys.filter((k) => requestLatencyMs(1000, k, 1) === requestLatencyMs(1000, k, 0))).toHaveLength(0);
  });

  test('is lognormal around the configured mean, with a tail', () => {
    const draws = Array.from({ length: 4000 }, (_, i) => requestLatencyMs(1000, i * 7919 + 13, 0));
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    expect(mean).toBeGreaterThan(900);
    expect(mean).toBeLessThan(1100);
    expect(Math.max(...draws)).toBeGreaterThan(2000);
    expect(Math.min(...draws)).toBeGreaterThan(0);
    expect(requestLatencyMs(0, 42, 0)).toBe(0);
  });
});
