import { flag, intOpt, numOpt, str, UsageError, type Command } from './command';
import { startSimulator } from '../sim';
import { simDialects, type SimDialect } from '../sim/dialects';

/**
 * `codeclm sim-llm`: the offline OpenAI-compatible simulator in the foreground. It serves canned,
 * deterministic content for tests, benchmarks and the offline demo; the banner says so plainly.
 */
export const simLlmCommand: Command = {
  name: 'sim-llm',
  summary: 'run the offline OpenAI-compatible LLM simulator (a test tool, not a model)',
  usage:
    'sim-llm [--port 8787] [--host 127.0.0.1] [--seed S] [--latency-ms N] [--error-rate R] [--malformed-rate R] [--truncate-rate R] [--rpm N] [--dialect openai|llama-cpp-python|json-object-only|prompt-only] [--state-dir DIR] [--batch-delay-ms N] [--batch-failure-rate R] [--batch-fail-ids ID,ID] [--batch-expire N] [--batch-fail-validation N] [--batch-window-ms N] [--price-in USD] [--price-out USD] [--batch-price-ratio R] [--json]',
  details: [
    'Serves POST /v1/chat/completions and GET /v1/models with deterministic simulated content',
    '(same seed + same request = same reply). Models whose name matches /target|small|weak|mini|tiny/i',
    'answer like a weaker model; any other name answers like the strong model.',
    'Faults: --latency-ms (lognormal mean), --error-rate (429 with Retry-After / 500 / 503),',
    '--malformed-rate (broken, fenced or chatty JSON), --truncate-rate (finish_reason "length"),',
    '--rpm (requests-per-minute cap, answered 429 with Retry-After).',
    '--dialect: which structured-output requests it takes: openai (default: json_schema, json_object with',
    'or without a schema), llama-cpp-python (refuses json_schema with HTTP 500 and a validation error as',
    'llama-cpp-python 0.3.16 does; honours {"type":"json_object","schema":...}), json-object-only, prompt-only.',
    'A request with a schema it honours gets JSON valid against that schema, recognised prompt or not.',
    'Control: POST /_sim/script (JSON list of scripted next responses, e.g. [{"status":429,"retryAfter":1},',
    '{"reset":true},{"malformed":"fenced","task":"encode"}]), GET /_sim/requests, GET /_sim/stats, POST /_sim/reset.',
    'Batch API (OpenAI Files + Batches): POST/GET /v1/files, GET/DELETE /v1/files/{id}, GET /v1/files/{id}/content,',
    'POST/GET /v1/batches, GET /v1/batches/{id}, POST /v1/batches/{id}/cancel. Each line is answered like the',
    'same request online. --batch-delay-ms: time in_progress (default 1000); --batch-failure-rate: share of',
    'lines answered 500; --batch-fail-ids: custom_ids that fail once each; --batch-expire N: the next N batches',
    'expire (half done); --batch-fail-validation N: the next N fail validation; --batch-window-ms: how long the',
    '"24h" window lasts (default 24 h). Control: POST /_sim/batch-faults {"expire":N,"failValidation":N,',
    '"failLines":[...]}, POST /_sim/batches/{id}/expire. --state-dir keeps files and batches across restarts.',
    "Prices for the stats' cost: --price-in/--price-out USD per million tokens (default 1 and 4), batch at",
    '--batch-price-ratio of online (default 0.5).',
    'Point the pipeline at it with OPENAI_BASE_URL=<printed url>. Stops on SIGINT/SIGTERM.',
    '--json prints {"url","port"} on stdout once listening.',
  ],
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    seed: { type: 'string' },
    'latency-ms': { type: 'string' },
    'error-rate': { type: 'string' },
    'malformed-rate': { type: 'string' },
    'truncate-rate': { type: 'string' },
    rpm: { type: 'string' },
    dialect: { type: 'string' },
    'state-dir': { type: 'string' },
    'batch-delay-ms': { type: 'string' },
    'batch-failure-rate': { type: 'string' },
    'batch-fail-ids': { type: 'string' },
    'batch-expire': { type: 'string' },
    'batch-fail-validation': { type: 'string' },
    'batch-window-ms': { type: 'string' },
    'price-in': { type: 'string' },
    'price-out': { type: 'string' },
    'batch-price-ratio': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(args) {
    if (args.positionals.length)
      throw new UsageError(
        `codeclm sim-llm: unexpected argument "${args.positionals[0]}"\nusage: codeclm ${simLlmCommand.usage}`,
      );
    const port = intOpt(args, 'port', simLlmCommand, { min: 0 }) ?? 8787;
    if (port > 65535) throw new UsageError('codeclm sim-llm: --port must be <= 65535');
    const seedText = str(args, 'seed');
    const seed = seedText === undefined ? 0 : Number(seedText);
    if (!Number.isInteger(seed))
      throw new UsageError(`codeclm sim-llm: --seed must be an integer, got "${seedText}"`);
    const rate = (name: string) => numOpt(args, name, simLlmCommand, { min: 0, max: 1 });
    const dialect = str(args, 'dialect') ?? 'openai';
    if (!(simDialects as readonly string[]).includes(dialect))
      throw new UsageError(
        `codeclm sim-llm: --dialect must be one of ${simDialects.join(', ')}, got "${dialect}"`,
      );
    const sim = await startSimulator({
      port,
      host: str(args, 'host') ?? '127.0.0.1',
      seed,
      latencyMs: numOpt(args, 'latency-ms', simLlmCommand, { min: 0 }),
      errorRate: rate('error-rate'),
      malformedRate: rate('malformed-rate'),
      truncateRate: rate('truncate-rate'),
      rpm: numOpt(args, 'rpm', simLlmCommand, { min: 1 }),
      dialect: dialect as SimDialect,
      stateDir: str(args, 'state-dir'),
      batch: {
        completionDelayMs: numOpt(args, 'batch-delay-ms', simLlmCommand, { min: 0 }),
        failureRate: rate('batch-failure-rate'),
        failLines: str(args, 'batch-fail-ids')
          ?.split(',')
          .map((x) => x.trim())
          .filter(Boolean),
        expire: intOpt(args, 'batch-expire', simLlmCommand, { min: 0 }),
        failValidation: intOpt(args, 'batch-fail-validation', simLlmCommand, { min: 0 }),
        windowMs: numOpt(args, 'batch-window-ms', simLlmCommand, { min: 1 }),
      },
      prices: {
        inputPerMTok: numOpt(args, 'price-in', simLlmCommand, { min: 0 }),
        outputPerMTok: numOpt(args, 'price-out', simLlmCommand, { min: 0 }),
        batchRatio: numOpt(args, 'batch-price-ratio', simLlmCommand, { min: 0, max: 1 }),
      },
    });
    process.stderr.write(
      [
        '*** codeclm sim-llm: OFFLINE SIMULATOR, not a language model. ***',
        `It speaks the OpenAI Chat Completions, Files and Batch APIs at ${sim.url} with canned, deterministic content (seed ${seed}),`,
        `structured-output dialect "${dialect}",`,
        'for tests, benchmarks and the offline demo. Datasets made with it are test data, not model output.',
        `Use it with: OPENAI_BASE_URL=${sim.url}   (Ctrl-C to stop)`,
        '',
      ].join('\n'),
    );
    if (flag(args, 'json')) process.stdout.write(`${JSON.stringify({ url: sim.url, port: sim.port })}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    const stats = sim.stats();
    await sim.close();
    process.stderr.write(`codeclm sim-llm: stopped after ${stats.requests} requests\n`);
  },
};
