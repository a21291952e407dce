import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from '../temporal/devServer';
import { logTail, superviseUntilReady } from '../util/supervise';
import {
  provisionLlamaServerPython,
  provisionModel,
  SMOLLM2,
  type LlamaProvisionOptions,
  type LlamaServerPython,
  type ModelSpec,
} from './provision';

/**
 * llama-cpp-python's OpenAI-compatible server as a child process:
 * `python -m llama_cpp.server --model FILE --model_alias NAME --host 127.0.0.1 --port P`, ready when
 * GET /v1/models answers. Its output goes to a log file, whose tail is in every startup error.
 */
export interface LlamaServerOptions {
  python: LlamaServerPython;
  model: string;
  alias: string;
  port?: number;
  /** Context window in tokens. The pipeline's longest prompts (judge with two answers) need ~3k. */
  nCtx?: number;
  /** CPU threads for generation (the server's default is half the cores). */
  nThreads?: number;
  logFile: string;
  startTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface LlamaServer {
  /** Base URL ending in /v1, for OPENAI_BASE_URL. */
  url: string;
  port: number;
  alias: string;
  logFile: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export const DEFAULT_N_CTX = 8192;

async function modelsAnswer(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/models`, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

export async function startLlamaServer(opts: LlamaServerOptions): Promise<LlamaServer> {
  const port = opts.port ?? (await freePort());
  const args = [
    '-m',
    'llama_cpp.server',
    '--model',
    opts.model,
    '--model_alias',
    opts.alias,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--n_ctx',
    String(opts.nCtx ?? DEFAULT_N_CTX),
  ];
  if (opts.nThreads) args.push('--n_threads', String(opts.nThreads));
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const out = fs.openSync(opts.logFile, 'a');
  fs.writeSync(out, `$ ${opts.python.python} ${args.join(' ')}\n`);
  const child = spawn(opts.python.python, args, {
    stdio: ['ignore', out, out],
    env: { ...(opts.env ?? process.env), ...opts.python.env },
  });
  fs.closeSync(out);
  const url = `http://127.0.0.1:${port}/v1`;
  const { stop } = await superviseUntilReady(child, {
    name: "llama-cpp-python's server",
    logFile: opts.logFile,
    ready: () => modelsAnswer(url),
    where: `${url}/models`,
    startTimeoutMs: opts.startTimeoutMs ?? 120_000,
    pollMs: 300,
    tail: (file) => logTail(file, 8),
  });
  return { url, port, alias: opts.alias, logFile: opts.logFile, process: child, stop };
}

/** Provisions the python and the model (each route reported), then starts the server. */
export async function provisionAndStartLlamaServer(
  opts: LlamaProvisionOptions & { logFile: string; spec?: ModelSpec; nCtx?: number; nThreads?: number },
): Promise<LlamaServer & { python: LlamaServerPython; model: string }> {
  const spec = opts.spec ?? SMOLLM2;
  const python = await provisionLlamaServerPython(opts);
  const model = await provisionModel(spec, { ...opts, python: python.python });
  const server = await startLlamaServer({
    python,
    model,
    alias: spec.alias,
    logFile: opts.logFile,
    nCtx: opts.nCtx,
    nThreads: opts.nThreads,
    env: opts.env,
  });
  return { ...server, python, model };
}
