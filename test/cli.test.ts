import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { codeclmBin, runCli } from './helpers/cli';
import { tmpDir } from './helpers/env';
import { freePort } from '../src/temporal/devServer';
import { main } from '../src/client';

/** The CLI as a user drives it: exit codes, messages that name the bad input, nothing started. */

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { env });

// An address where no Temporal server runs: a run that got past validation would fail to connect
// (exit 1), so exit 2 proves validation stopped it first.
const noServer = { TEMPORAL_ADDRESS: '127.0.0.1:9', OPENAI_API_KEY: '' };

test('--help lists every command and exits 0', async () => {
  const r = await cli(['--help']);
  expect(r.code).toBe(0);
  for (const c of [
    'run',
    'worker',
    'server',
    'status',
    'wait',
    'pause',
    'resume',
    'cancel',
    'export',
    'eval',
    'sim-llm',
  ]) {
    expect(r.stdout).toContain(`  ${c} `);
  }
  expect((await cli(['run', '--help'])).code).toBe(0);
});

test('bad usage exits 2 with the usage line', async () => {
  const unknown = await cli(['run', '--bogus']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(/usage: codeclm run/);
  const missing = await cli(['run', '--out', 'x']);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('--seeds is required');
  expect((await cli(['nope'])).code).toBe(2);
  expect((await cli(['run', '--seeds', 'a', '--out', 'b', '--size', 'ten'])).stderr).toContain(
    '--size must be an integer',
  );
});

/** The CLI in this process (same parser, no process start): exit code and what it printed. */
async function inProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const spies = (['stdout', 'stderr'] as const).map((stream) =>
    jest.spyOn(process[stream], 'write').mockImplementation((chunk: string | Uint8Array) => {
      out[stream] += String(chunk);
      return true;
    }),
  );
  try {
    return { code: await main(args), ...out };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}

test('developer tools are listed apart from the product commands', async () => {
  const r = await inProcess(['--help']);
  expect(r.code).toBe(0);
  const [product, devTools] = r.stdout.split('Developer tools:');
  for (const c of ['bench', 'chaos', 'sim-llm', 'codec-server', 'provision']) {
    expect(devTools).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(product).not.toMatch(new RegExp(`^  ${c} `, 'm'));
  }
  expect(product).toMatch(/^ {2}run /m);
  expect(product).toMatch(/^ {2}schedule /m);
});

test('subcommands have their own options and help', async () => {
  const create = await inProcess(['schedule', 'create', '--help']);
  expect(create.code).toBe(0);
  expect(create.stdout).toContain('Usage: codeclm schedule create [options] <ID>');
  for (const flag of ['--every', '--cron', '--seeds', '--out', '--overlap', '--decontaminate'])
    expect(create.stdout).toContain(flag);
  const list = await inProcess(['schedule', 'list', '--help']);
  expect(list.code).toBe(0);
  expect(list.stdout).toContain('--json');
  expect(list.stdout).not.toContain('--every');
  expect((await inProcess(['help', 'cache'])).stdout).toMatch(/stats[\s\S]*clear/);
  // `list` takes no --every: refused by the parser, naming the flag, before any server is asked.
  const bad = await inProcess(['schedule', 'list', '--every', '1h']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain("codeclm schedule list: unknown option '--every'");
  expect(bad.stderr).toContain('usage: codeclm schedule list');
});

test('bad flags and values exit 2 naming the flag', async () => {
  const cases: [string[], string][] = [
    [['run', '--seeds', 's.jsonl', '--out', 'o', '--size', '0'], '--size must be an integer >= 1, got "0"'],
    [
      ['export', 'r1', '--format', 'csv', '--out', 'x'],
      '--format must be one of openai, alpaca, sharegpt, jsonl',
    ],
    [['export', 'r1', '--out'], "option '--out <file>' argument missing"],
    [['export', 'r1', '--out', 'x'], '--format is required'],
    [['status'], "missing required argument 'RUN_ID'"],
    [['resume', 'r1', '--budget-calls', '-3'], '--budget-calls must be an integer >= 1, got "-3"'],
    [['sim-llm', '--error-rate', '2'], '--error-rate must be a number >= 0 and <= 1, got "2"'],
    [['server', '--port', '70000'], '--port must be an integer from 1 to 65535'],
    [
      ['schedule', 'create', 'x', '--every', '1h', '--cron', '0 3 * * *', '--seeds', 'a', '--out', 'b'],
      '--cron',
    ],
    [
      ['schedule', 'create', 'x', '--every', 'soon', '--seeds', 'a', '--out', 'b'],
      '--every must be a duration',
    ],
    [['cache', 'stats', 'extra'], 'too many arguments'],
    [['nope'], "unknown command 'nope'"],
  ];
  for (const [args, message] of cases) {
    const r = await inProcess(args);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.stderr).toContain(message);
  }
});

test('a seed error names file and line, exits 2, and starts nothing', async () => {
  const dir = tmpDir('codeclm-badseeds-');
  const seeds = path.join(dir, 'seeds.jsonl');
  fs.writeFileSync(
    seeds,
    '{"instruction":"Write a haiku about rain."}\n{"instruction": "unterminated\n{"prompt":""}\n',
  );
  const out = path.join(dir, 'out');
  const r = await cli(['run', '--seeds', seeds, '--out', out], noServer);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`${seeds}:2`);
  expect(r.stderr).toContain(`${seeds}:3`);
  expect(fs.existsSync(out)).toBe(false);
});

test('a config error names the field path, exits 2, and starts nothing', async () => {
  const dir = tmpDir('codeclm-badconfig-');
  const config = path.join(dir, 'codeclm.config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({ roles: { strong: { temperature: 5 } }, method: { theta: 'three' } }, null, 2),
  );
  const out = path.join(dir, 'out');
  const r = await cli(
    [
      'run',
      '--seeds',
      path.join(__dirname, '..', 'examples', 'seeds.jsonl'),
      '--out',
      out,
      '--config',
      config,
    ],
    noServer,
  );
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('roles.strong.temperature');
  expect(r.stderr).toContain('method.theta');
  expect(fs.existsSync(out)).toBe(false);
});

test('control commands say clearly when no server is there', async () => {
  const r = await cli(['status', 'some-run'], {
    TEMPORAL_ADDRESS: '',
    CODECLM_EMBEDDED_PORT: String(await freePort()),
  });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/no Temporal server is running at 127\.0\.0\.1:\d+/);
});

test('sim-llm answers a json_schema request with schema-valid JSON', async () => {
  const port = await freePort();
  const child = spawn(process.execPath, [codeclmBin, 'sim-llm', '--port', String(port), '--seed', '3']);
  try {
    let banner = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        banner += d.toString();
        if (banner.includes(String(port))) resolve();
      });
      child.on('exit', (code) => reject(new Error(`sim-llm exited ${code}: ${banner}`)));
    });
    expect(banner).toMatch(/simulator/i);
    const schema = {
      type: 'object',
      properties: { use_case: { type: 'string' }, skills: { type: 'array', items: { type: 'string' } } },
      required: ['use_case', 'skills'],
      additionalProperties: false,
    };
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'sim-strong',
        messages: [
          {
            role: 'user',
            content: 'Label: <instruction>\nPlan a three-day trip to Lisbon on a budget.\n</instruction>',
          },
        ],
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'codeclm_encode', schema, strict: true },
        },
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      choices: { message: { content: string } }[];
      usage: { total_tokens: number };
    };
    const parsed = z
      .object({ use_case: z.string().min(1), skills: z.array(z.string()).min(1) })
      .strict()
      .parse(JSON.parse(body.choices[0]!.message.content));
    expect(parsed.skills.length).toBeLessThanOrEqual(3);
    expect(body.usage.total_tokens).toBeGreaterThan(0);
  } finally {
    child.kill('SIGTERM');
  }
});
