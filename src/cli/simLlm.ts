import {
  checkedOption,
  choiceOption,
  intOption,
  numberOption,
  portOption,
  type CommandSpec,
} from './command';
import { sharedOptions, type JsonOption } from './options';
import { startSimulator } from '../sim';
import { simDialects, type SimDialect } from '../sim/dialects';

/**
 * `codeclm sim-llm`: the offline OpenAI-compatible simulator in the foreground. It serves canned,
 * deterministic content for tests, benchmarks and the offline demo; the banner says so plainly.
 */
interface SimLlmOptions extends JsonOption {
  port: number;
  host: string;
  seed: number;
  latencyMs?: number;
  errorRate?: number;
  malformedRate?: number;
  truncateRate?: number;
  rpm?: number;
  dialect: SimDialect;
  stateDir?: string;
  batchDelayMs?: number;
  batchFailureRate?: number;
  batchFailIds?: string[];
  batchExpire?: number;
  batchFailValidation?: number;
  batchWindowMs?: number;
  priceIn?: number;
  priceOut?: number;
  batchPriceRatio?: number;
}

export const simLlmCommand: CommandSpec<SimLlmOptions> = {
  name: 'sim-llm',
  summary: 'run the offline OpenAI-compatible LLM simulator (a test tool, not a model)',
  devTool: true,
  options(cmd) {
    const rate = (flags: string, what: string) => numberOption(flags, what, { min: 0, max: 1 });
    cmd
      .addOption(portOption('--port <n>', 'port to listen on (0 = any free port)', true).default(8787))
      .option('--host <host>', 'interface to listen on', '127.0.0.1')
      .addOption(
        checkedOption(
          '--seed <s>',
          'seed of the simulated content (same seed + same request = same reply)',
          (v) =>
            /^-?\d+$/.test(v.trim()) ? { ok: true, value: Number(v) } : { ok: false, expected: 'an integer' },
        ).default(0),
      )
      .addOption(numberOption('--latency-ms <n>', 'mean latency (lognormal)', { min: 0 }))
      .addOption(rate('--error-rate <r>', 'share of requests answered 429 with Retry-After / 500 / 503'))
      .addOption(rate('--malformed-rate <r>', 'share of answers with broken, fenced or chatty JSON'))
      .addOption(rate('--truncate-rate <r>', 'share of answers cut short (finish_reason "length")'))
      .addOption(
        numberOption('--rpm <n>', 'requests-per-minute cap, answered 429 with Retry-After', { min: 1 }),
      )
      .addOption(
        choiceOption(
          '--dialect <dialect>',
          'which structured-output requests it takes: openai (json_schema, json_object with or without a ' +
            'schema), llama-cpp-python (refuses json_schema with HTTP 500 and a validation error as ' +
            'llama-cpp-python 0.3.16 does; honours {"type":"json_object","schema":...}), json-object-only, prompt-only',
          simDialects,
        ).default('openai'),
      )
      .option('--state-dir <dir>', 'keeps files and batches across restarts')
      .addOption(
        numberOption('--batch-delay-ms <n>', 'time a batch stays in_progress (default 1000)', { min: 0 }),
      )
      .addOption(rate('--batch-failure-rate <r>', 'share of batch lines answered 500'))
      .addOption(
        checkedOption('--batch-fail-ids <ids>', 'custom_ids (comma-separated) that fail once each', (v) => ({
          ok: true,
          value: v
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean),
        })),
      )
      .addOption(intOption('--batch-expire <n>', 'the next N batches expire (half done)', { min: 0 }))
      .addOption(intOption('--batch-fail-validation <n>', 'the next N batches fail validation', { min: 0 }))
      .addOption(
        numberOption('--batch-window-ms <n>', 'how long the "24h" window lasts (default 24 h)', { min: 1 }),
      )
      .addOption(
        numberOption('--price-in <usd>', "USD per million input tokens, for the stats' cost (default 1)", {
          min: 0,
        }),
      )
      .addOption(numberOption('--price-out <usd>', 'USD per million output tokens (default 4)', { min: 0 }))
      .addOption(
        numberOption('--batch-price-ratio <r>', 'batch price as a share of online (default 0.5)', {
          min: 0,
          max: 1,
        }),
      )
      .addOption(sharedOptions.json('print {"url","port"} on stdout once listening'));
  },
  help: [
    'Serves POST /v1/chat/completions and GET /v1/models with deterministic simulated content.',
    'Models whose name matches /target|small|weak|mini|tiny/i answer like a weaker model; any other name',
    'answers like the strong model.',
    'A request with a schema it honours gets JSON valid against that schema, recognised prompt or not.',
    'Control: POST /_sim/script (JSON list of scripted next responses, e.g. [{"status":429,"retryAfter":1},',
    '{"reset":true},{"malformed":"fenced","task":"encode"}]), GET /_sim/requests, GET /_sim/stats, POST /_sim/reset.',
    'Batch API (OpenAI Files + Batches): POST/GET /v1/files, GET/DELETE /v1/files/{id}, GET /v1/files/{id}/content,',
    'POST/GET /v1/batches, GET /v1/batches/{id}, POST /v1/batches/{id}/cancel. Each line is answered like the',
    'same request online. Control: POST /_sim/batch-faults {"expire":N,"failValidation":N,"failLines":[...],',
    '"validationCode":"token_limit_exceeded" (the code of the validation failures)}, POST /_sim/batches/{id}/expire.',
    'Point the pipeline at it with OPENAI_BASE_URL=<printed url>. Stops on SIGINT/SIGTERM.',
  ],
  async run(options) {
    const { seed, dialect } = options;
    const sim = await startSimulator({
      port: options.port,
      host: options.host,
      seed,
      latencyMs: options.latencyMs,
      errorRate: options.errorRate,
      malformedRate: options.malformedRate,
      truncateRate: options.truncateRate,
      rpm: options.rpm,
      dialect,
      stateDir: options.stateDir,
      batch: {
        completionDelayMs: options.batchDelayMs,
        failureRate: options.batchFailureRate,
        failLines: options.batchFailIds,
        expire: options.batchExpire,
        failValidation: options.batchFailValidation,
        windowMs: options.batchWindowMs,
      },
      prices: {
        inputPerMTok: options.priceIn,
        outputPerMTok: options.priceOut,
        batchRatio: options.batchPriceRatio,
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
    if (options.json) process.stdout.write(`${JSON.stringify({ url: sim.url, port: sim.port })}\n`);
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
