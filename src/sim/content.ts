import type { DecodeOutput, EncodeOutput, ImproveOutput, RubricsOutput } from '../tasks';
import { contentWords, domainOfUseCase, rankDomains, useCaseFor } from './lexicon';
import { hash32, pick, prng, shuffled } from './prng';

/**
 * What the simulator writes for the strong model's generation tasks (encode, decode, rubrics,
 * improve). Every choice is fixed by the simulator seed and the request's slots.
 */

/**
 * Improve appends one line per applied action, so an instruction's difficulty (how many
 * Self-Rubrics steps it went through) can be read back from its text by the answer and judge code.
 */
export const CONSTRAINT_PREFIX = 'Additional requirement: ';

export function splitInstruction(text: string): { basic: string; constraints: string[] } {
  const basic: string[] = [];
  const constraints: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith(CONSTRAINT_PREFIX))
      constraints.push(line.slice(CONSTRAINT_PREFIX.length).trim().replace(/\.$/, ''));
    else basic.push(line);
  }
  return { basic: basic.join('\n').trim(), constraints };
}

export function encode(seed: number, instruction: string, maxSkills: number): EncodeOutput {
  const ranked = rankDomains(instruction);
  const rand = prng(hash32(seed, 'encode', instruction));
  const limit = Math.max(1, Math.min(maxSkills, 10));
  const want = Math.min(limit, rand() < 0.6 ? 3 : 2);
  const top = ranked[0]?.domain;
  if (!top) {
    // No domain keyword: a generic label plus skills from the seed's own words.
    const words = contentWords(instruction).slice(0, 4);
    const skills = [...words.slice(0, want - 1).map((w) => `${w} knowledge`), 'clear explanation'].slice(
      0,
      limit,
    );
    return { use_case: 'general question answering', skills };
  }
  // Same domain, same use case: the usual label, or its alternative when the seed asks for that flavour.
  const useCase = useCaseFor(top, instruction);
  const skills = shuffled(top.skills, rand).slice(0, want);
  // A seed that also touches a second domain borrows one of its skills (mix-and-match has material).
  const second = ranked[1]?.domain;
  if (second && skills.length > 1 && rand() < 0.5) skills[skills.length - 1] = pick(second.skills, rand);
  return { use_case: useCase, skills: [...new Set(skills)] };
}

const AUDIENCES = [
  'a complete beginner',
  'a busy parent',
  'a small team at work',
  'a retired teacher',
  'a university student',
  'a non-native English speaker',
  'a sceptical manager',
  'a curious teenager',
];

type Template = (t: { topic: string; skill: string; audience: string; useCase: string }) => string;
const DECODE_TEMPLATES: Template[] = [
  ({ topic, skill }) =>
    `I'm working on ${topic}. Give me a detailed plan, paying close attention to ${skill}.`,
  ({ topic, skill, audience }) => `Explain how to approach ${topic} to ${audience}, showing good ${skill}.`,
  ({ topic, audience }) => `Write a short practical guide about ${topic} for ${audience}.`,
  ({ topic }) => `What are the most common mistakes people make with ${topic}, and how can they be avoided?`,
  ({ topic, audience }) =>
    `Compare two different ways of handling ${topic} and recommend one for ${audience}.`,
  ({ topic }) => `I only have one evening to deal with ${topic}. Walk me through it step by step.`,
  ({ topic, skill }) =>
    `A friend asked me about ${topic}. Help me prepare a clear answer that draws on ${skill}.`,
  ({ topic }) => `Draft a checklist for ${topic}, with a one-line reason for every item.`,
  ({ topic }) => `Give me three creative ideas for ${topic} and say which one you would pick and why.`,
  ({ topic, audience }) => `Summarise what ${audience} should know about ${topic} in a few paragraphs.`,
  ({ topic, skill, useCase }) => `Create a ${useCase} example centred on ${topic} that relies on ${skill}.`,
  ({ topic, audience }) => `Help me with ${topic}: I am ${audience} and I want practical, concrete advice.`,
];

function topicsFor(useCase: string, skills: string[]): string[] {
  const domain = domainOfUseCase(useCase, skills);
  if (domain) return domain.topics;
  const words = contentWords(`${useCase} ${skills.join(' ')}`);
  const base = words.length ? words : ['everyday problems'];
  return base.flatMap((w) => [
    `a question about ${w}`,
    `a real-world ${w} situation`,
    `${w} for a small project`,
  ]);
}

/**
 * On demand (tests of duplicate removal), decode repeats itself: each instruction after the first is,
 * with these probabilities, a copy (same words, other case and punctuation) or a paraphrase of an
 * earlier one of the same batch.
 */
export interface DecodeRepeats {
  exact?: number;
  paraphrase?: number;
}

const POLITE = ['Please', 'Could you', 'Kindly', 'I would like you to'];
const SYNONYMS: Record<string, string> = {
  explain: 'describe',
  write: 'put together',
  short: 'brief',
  practical: 'hands-on',
  detailed: 'thorough',
  common: 'frequent',
  mistakes: 'errors',
  compare: 'contrast',
  recommend: 'suggest',
  help: 'assist',
  clear: 'plain',
  draft: 'prepare',
  creative: 'original',
  summarise: 'sum up',
  create: 'make',
  concrete: 'specific',
};

/** The same request in other words: a polite opening, and sometimes one word swapped for a synonym. */
export function paraphrase(text: string, rand: () => number): string {
  let body = text.charAt(0).toLowerCase() + text.slice(1);
  if (rand() < 0.5) {
    const words = body.split(' ');
    const at = words.findIndex((w) => SYNONYMS[w.toLowerCase()] !== undefined);
    if (at >= 0) words[at] = SYNONYMS[words[at]!.toLowerCase()]!;
    body = words.join(' ');
  }
  return `${pick(POLITE, rand)} ${body}`;
}

/** The same words, another case and final punctuation. */
function sameWords(text: string): string {
  const body = text.charAt(0).toLowerCase() + text.slice(1);
  return /[.?!]$/.test(body) ? `${body.slice(0, -1)}!` : `${body}!`;
}

function repeatItself(out: string[], repeats: DecodeRepeats, rand: () => number): string[] {
  const exact = repeats.exact ?? 0;
  const para = repeats.paraphrase ?? 0;
  return out.map((text, i) => {
    const r = rand();
    if (i === 0 || r >= exact + para) return text;
    const earlier = out[Math.floor(rand() * i)]!;
    // A copy differs only in case and punctuation (the decode activity already drops byte-identical ones).
    return r < exact ? sameWords(earlier) : paraphrase(earlier, rand);
  });
}

/** `batch` (the prompt's top-up batch number) changes the draw, so later batches differ from earlier ones. */
export function decode(
  seed: number,
  useCase: string,
  skills: string[],
  count: number,
  batch = '1',
  repeats?: DecodeRepeats,
): DecodeOutput {
  const rand = prng(hash32(seed, 'decode', useCase, skills.join('|'), count, batch));
  const skillList = skills.length ? skills : ['clear explanation'];
  const topics = shuffled(topicsFor(useCase, skillList), rand);
  const seen = new Set<string>();
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    // Walk the topics in a shuffled order first so a batch covers as many topics as it can.
    const topic = topics[i % topics.length]!;
    let text = pick(
      DECODE_TEMPLATES,
      rand,
    )({ topic, skill: pick(skillList, rand), audience: pick(AUDIENCES, rand), useCase });
    if (i > count * 20) text = `${text} (Variant ${i}.)`; // exhausted combinations: still distinct
    if (!seen.has(text)) {
      seen.add(text);
      out.push(text);
    }
  }
  if (repeats && (repeats.exact || repeats.paraphrase))
    return { instructions: repeatItself(out, repeats, prng(hash32(seed, 'repeat', useCase, count, batch))) };
  return { instructions: out };
}

type RubricMaker = (skill: string, useCase: string) => { rubric: string; must: string };
const RUBRICS: RubricMaker[] = [
  (s) => ({
    rubric: `Needs ${s} applied to a concrete, specific case`,
    must: `include a worked example that shows ${s}`,
  }),
  () => ({
    rubric: 'Requires weighing alternatives instead of giving one answer',
    must: 'compare at least two alternatives and justify the choice',
  }),
  () => ({ rubric: 'Requires structured, scannable output', must: 'present the key points in a table' }),
  () => ({
    rubric: 'Requires anticipating what can go wrong',
    must: 'list the likely risks and how to mitigate each one',
  }),
  (_s, u) => ({
    rubric: 'Requires adapting to a lay audience',
    must: `be understandable to someone with no background in ${u}`,
  }),
  () => ({
    rubric: 'Requires quantitative rigour',
    must: 'give concrete numbers or estimates for every recommendation',
  }),
  () => ({
    rubric: 'Requires careful sequencing',
    must: 'be organised as numbered steps with a time estimate for each',
  }),
  (s) => ({
    rubric: `Requires justified reasoning grounded in ${s}`,
    must: `explain the reasoning behind each recommendation using ${s}`,
  }),
  () => ({
    rubric: 'Requires handling an extra real-world constraint',
    must: 'work within a strict budget stated in the answer',
  }),
  (s) => ({
    rubric: `Requires depth in ${s} beyond the obvious`,
    must: `cover one non-obvious aspect of ${s}`,
  }),
];

export function rubrics(seed: number, useCase: string, skills: string[], count: number): RubricsOutput {
  const rand = prng(hash32(seed, 'rubrics', useCase, skills.join('|'), count));
  const skillList = skills.length ? skills : ['clear explanation'];
  const makers = shuffled(RUBRICS, rand);
  const out: RubricsOutput['rubrics'] = [];
  for (let i = 0; i < count; i++) {
    const made = makers[i % makers.length]!(skillList[i % skillList.length]!, useCase);
    const round = Math.floor(i / makers.length);
    const must = round ? `${made.must} (variation ${round + 1})` : made.must;
    out.push({ rubric: made.rubric, action: `Add a constraint that the answer must ${must}.` });
  }
  return { rubrics: out };
}

/** The constraint an action asks for, as the line improve appends ("the answer must ..."). */
export function constraintOf(action: string): string {
  const must = /\bmust\s+([\s\S]+?)\s*\.?\s*$/i.exec(action.trim());
  if (must) return `the answer must ${must[1]!.replace(/\s+/g, ' ')}`;
  const text = action.trim().replace(/\s+/g, ' ').replace(/\.$/, '');
  return `the answer must follow this: ${text.charAt(0).toLowerCase()}${text.slice(1)}`;
}

export function improve(_seed: number, instruction: string, action: string): ImproveOutput {
  return { instruction: `${instruction.trimEnd()}\n${CONSTRAINT_PREFIX}${constraintOf(action)}.` };
}
