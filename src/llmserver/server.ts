import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from '../temporal/devServer';
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

function logTail(file: string, lines = 8): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

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
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    }),
  );
  child.once('error', (err) => (exited = `error ${err.message}`));

  const url = `http://127.0.0.1:${port}/v1`;
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exit;
    clearTimeout(killer);
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 120_000);
  while (!(await modelsAnswer(url))) {
    if (exited) {
      throw new Error(
        `llama-cpp-python's server exited (${exited}) before answering at ${url}; log ${opts.logFile}:\n${logTail(opts.logFile)}`,
      );
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `llama-cpp-python's server did not answer GET ${url}/models within ${(opts.startTimeoutMs ?? 120_000) / 1000} s; log ${opts.logFile}:\n${logTail(opts.logFile)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 300));
  }
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
