import { answer, judge } from './answers';
import { decode, encode, improve, rubrics, type DecodeRepeats } from './content';
import { hash32 } from './prng';
import { contentText, splitList, type ChatBodyMessage, type Recognised } from './recognise';

/**
 * The simulator's reply content for a recognised request. Generation tasks draw their variety from
 * (seed, model, temperature, slots); answers decide coverage per instruction (so retries and
 * repairs of the same instruction get the same quality); the judge depends on the texts only.
 */
export interface Generated {
  content: string;
  json: boolean;
}

function int(text: string | undefined, fallback: number, max: number): number {
  const n = Number.parseInt(text ?? '', 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, max) : fallback;
}

export function generate(
  seed: number,
  model: string,
  temperature: number,
  messages: ChatBodyMessage[],
  rec: Recognised,
  opts: { repeats?: DecodeRepeats } = {},
): Generated {
  const firstUser = contentText(messages.find((m) => m.role === 'user')?.content);
  const s = rec.slots ?? {};
  const varied = hash32(seed, model, temperature);
  const json = (value: unknown): Generated => ({ content: JSON.stringify(value), json: true });
  switch (rec.task?.stage) {
    case 'encode':
      return json(encode(varied, s.instruction ?? firstUser, int(s.max_skills, 3, 10)));
    case 'decode':
      return json(
        decode(
          varied,
          s.use_case ?? 'general question answering',
          splitList(s.skills),
          int(s.count, 5, 500),
          s.batch,
          opts.repeats,
        ),
      );
    case 'rubrics':
      return json(
        rubrics(varied, s.use_case ?? 'general question answering', splitList(s.skills), int(s.count, 4, 50)),
      );
    case 'improve':
      return json(
        improve(
          varied,
          s.instruction ?? firstUser,
          s.action ?? 'Add a constraint that the answer must be more specific.',
        ),
      );
    case 'judge':
      return json(
        rec.slots
          ? judge(seed, s.instruction ?? '', s.answer_a ?? '', s.answer_b ?? '')
          : { score_a: 5, score_b: 5 },
      );
    case 'check':
      return json({ ok: true });
    default:
      return { content: answer(seed, model, firstUser), json: false };
  }
}

/** ~4 characters per token: close enough for budgets and reports, and honest about being an estimate. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}
