import { estimateTokens, generate, type Generated } from './generate';
import { malform, truncate, type MalformedKind, type ScriptItem } from './faults';
import { hash32, prng } from './prng';
import { recognise, type ChatBodyMessage, type Recognised } from './recognise';
import { honoursSchema, readResponseFormat, type ResponseFormatSeen, type SimDialect } from './dialects';
import { fitsSchema, valueForSchema } from './schemaValue';
import type { DecodeRepeats } from './content';
import { HttpError } from './errors';

/**
 * One chat completion, apart from HTTP: the online endpoint and every line of a batch go through
 * these same functions, so the same request gets the same answer either way.
 */
export interface ChatRequest {
  model: string;
  messages: ChatBodyMessage[];
  temperature: number;
  maxTokens?: number;
  rf: ResponseFormatSeen;
  /** The response_format asked for, for the request log ({} when none). */
  format: { format?: string };
  rec: Recognised;
  /** The canonical request text: seeds the schema-generated values (same in batch and online). */
  key: string;
}

/** Validates a chat body as the endpoint does; throws the HttpError a server would answer. */
export function readChatRequest(body: unknown, models?: string[]): ChatRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new HttpError(400, 'request body must be a JSON object');
  const b = body as Record<string, unknown>;
  const model = b.model;
  const messages = b.messages;
  if (typeof model !== 'string' || !model) throw new HttpError(400, "'model' is required");
  if (models && !models.includes(model))
    throw new HttpError(
      404,
      `The model \`${model}\` does not exist`,
      'invalid_request_error',
      'model_not_found',
    );
  if (!Array.isArray(messages) || messages.length === 0)
    throw new HttpError(400, "'messages' must be a non-empty list");
  const temperature = typeof b.temperature === 'number' ? b.temperature : 1;
  const maxTokens =
    typeof b.max_tokens === 'number'
      ? b.max_tokens
      : typeof b.max_completion_tokens === 'number'
        ? b.max_completion_tokens
        : undefined;
  const rf = readResponseFormat(b.response_format);
  return {
    model,
    messages: messages as ChatBodyMessage[],
    temperature,
    maxTokens,
    rf,
    format: rf.kind === 'none' ? {} : { format: rf.kind },
    rec: recognise(messages as ChatBodyMessage[], rf.kind === 'json_schema' ? rf.name : undefined),
    key: JSON.stringify(body),
  };
}

export interface Reply {
  content: string;
  finish: 'stop' | 'length';
  /** What shaped the reply, if anything (e.g. "scripted", "malformed:fenced", "max_tokens"). */
  fault?: string;
  promptTokens: number;
  completionTokens: number;
}

export interface ReplyFaults {
  scripted?: ScriptItem;
  /** A random malformation already drawn; applied to JSON replies only. */
  malformed?: MalformedKind;
  /** A random cut already drawn. */
  truncate?: boolean;
}

/** The reply content for a valid request: generated, put in the asked-for format, then any faults. */
export function replyFor(
  seed: number,
  dialect: SimDialect,
  req: ChatRequest,
  opts: { repeats?: DecodeRepeats },
  faults: ReplyFaults = {},
): Reply {
  const { scripted } = faults;
  const gen = inFormat(
    generate(seed, req.model, req.temperature, req.messages, req.rec, { repeats: opts.repeats }),
    req.rf,
    dialect,
    () => prng(hash32(seed, 'schema', req.key)),
  );
  let content = scripted?.content ?? gen.content;
  let finish: Reply['finish'] = 'stop';
  let fault: string | undefined = scripted ? 'scripted' : undefined;
  const malformedKind: MalformedKind | undefined =
    scripted?.malformed ?? (!scripted && gen.json ? faults.malformed : undefined);
  if (malformedKind) {
    content = malform(content, malformedKind);
    fault = `malformed:${malformedKind}`;
  }
  const maxChars = req.maxTokens !== undefined ? req.maxTokens * 4 : undefined;
  const isRepair = req.messages.some((m) => m.role === 'assistant');
  if (maxChars !== undefined && content.length > maxChars && isRepair && !gen.json && !scripted) {
    // Asked again after a cut-off answer: reply with whole sentences that fit, like a model told to be brief.
    content = shorten(content, maxChars);
  }
  if (scripted?.truncate || (!scripted && faults.truncate)) {
    content = truncate(content);
    finish = 'length';
    fault = scripted ? 'scripted:truncate' : 'random:truncate';
  } else if (maxChars !== undefined && content.length > maxChars) {
    content = truncate(content, maxChars);
    finish = 'length';
    fault = 'max_tokens';
  }
  const promptTokens = estimateTokens(
    req.messages
      .map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content)))
      .join('\n'),
  );
  return { content, finish, fault, promptTokens, completionTokens: estimateTokens(content) };
}

/** The chat.completion object for a reply. */
export function completionObject(id: string, createdMs: number, model: string, reply: Reply): unknown {
  return {
    id,
    object: 'chat.completion',
    created: Math.floor(createdMs / 1000),
    model,
    system_fingerprint: 'codeclm-sim',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: reply.content, refusal: null },
        logprobs: null,
        finish_reason: reply.finish,
      },
    ],
    usage: {
      prompt_tokens: reply.promptTokens,
      completion_tokens: reply.completionTokens,
      total_tokens: reply.promptTokens + reply.completionTokens,
    },
  };
}

/**
 * The reply in the shape the request asked for. A schema the dialect enforces gets JSON valid
 * against it: the recognised task's reply if it fits, otherwise a value generated from the schema
 * (src/sim/schemaValue.ts), so any client's schema is honoured. JSON mode gets a JSON object.
 */
function inFormat(
  gen: Generated,
  rf: ResponseFormatSeen,
  dialect: SimDialect,
  rand: () => () => number,
): Generated {
  if (rf.schema && honoursSchema(dialect, rf)) {
    if (gen.json && fitsSchema(JSON.parse(gen.content), rf.schema)) return gen;
    return { content: JSON.stringify(valueForSchema(rf.schema, rand())), json: true };
  }
  if ((rf.kind === 'json_object' || rf.kind === 'json_object_schema') && !gen.json)
    return { content: JSON.stringify({ response: gen.content }), json: true };
  return gen;
}

function shorten(text: string, maxChars: number): string {
  const sentences = text.split(/(?<=[.!?])\s+/);
  let out = '';
  for (const s of sentences) {
    const next = out ? `${out} ${s}` : s;
    if (next.length > maxChars) break;
    out = next;
  }
  return out || text.slice(0, maxChars);
}
