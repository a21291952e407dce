import { dedupeSettings, ngramOf } from '../quality/settings';
import { removedCounts } from './removed';
import type { MethodConfig } from '../schemas/config';
import type { Report } from './build';
import { money, table } from './markdown';

/**
 * README.md of the out dir as a Hugging Face dataset card: a YAML header the Hub reads (configs and
 * splits pointing at dataset.jsonl, license, task categories, size), then prose on what the data is
 * and how this run made it. The directory can be pushed to the Hub as it is.
 */

export function sizeCategory(n: number): string {
  if (n < 1_000) return 'n<1K';
  if (n < 10_000) return '1K<n<10K';
  if (n < 100_000) return '10K<n<100K';
  if (n < 1_000_000) return '100K<n<1M';
  if (n < 10_000_000) return '1M<n<10M';
  return '10M<n<100M';
}

/** True when the run's models were the offline simulator's (its output is test data, not model output). */
export function madeBySimulator(r: Report): boolean {
  const roles = r.config?.roles;
  return !!roles && Object.values(roles).every((role) => role.model.startsWith('sim-'));
}

const q = (s: string) => JSON.stringify(s); // a JSON string is a valid double-quoted YAML scalar

function yamlHeader(r: Report): string {
  const n = r.counts.kept_in_dataset;
  return [
    '---',
    `pretty_name: ${q(`CodecLM synthetic instruction data (${r.run_id})`)}`,
    'license: other',
    `license_name: ${q('model-output-terms')}`,
    'task_categories:',
    '- text-generation',
    'language:',
    '- en',
    'size_categories:',
    `- ${sizeCategory(n)}`,
    'tags:',
    '- synthetic',
    '- instruction-tuning',
    '- sft',
    '- codeclm',
    ...(madeBySimulator(r) ? ['- simulator-test-data'] : []),
    'configs:',
    '- config_name: default',
    '  data_files:',
    '  - split: train',
    '    path: dataset.jsonl',
    'dataset_info:',
    '  features:',
    '  - name: id',
    '    dtype: string',
    '  - name: instruction',
    '    dtype: string',
    '  - name: response',
    '    dtype: string',
    '  - name: source',
    '    dtype: string',
    '  - name: metadata',
    '    struct:',
    '    - name: use_case',
    '      dtype: string',
    '    - name: skills',
    '      sequence: string',
    '  - name: iteration',
    '    dtype: int64',
    '  - name: scores',
    '    struct:',
    '    - name: strong',
    '      dtype: float64',
    '    - name: target',
    '      dtype: float64',
    '    - name: gap',
    '      dtype: float64',
    '  - name: run_id',
    '    dtype: string',
    '  - name: actions',
    '    sequence: string',
    '  splits:',
    '  - name: train',
    `    num_examples: ${n}`,
    '---',
  ].join('\n');
}

export function renderDatasetCard(r: Report): string {
  const c = r.counts;
  const m = r.config?.method;
  const roles = r.config?.roles;
  const fromTarget = c.keptFromTarget;
  const topUseCases = Object.entries(r.distributions.kept.use_cases).slice(0, 8);
  const topSkills = Object.entries(r.distributions.kept.skills).slice(0, 10);
  const cost = r.usage.cost;
  const sim = madeBySimulator(r);
  const firstIteration = r.iterations.find((i) => i.iteration === 1)?.kept ?? 0;
  return [
    yamlHeader(r),
    '',
    `# CodecLM synthetic instruction data: ${r.run_id}`,
    '',
    ...(sim
      ? [
          "> **Test data, not model output.** This run used codeclm's offline LLM simulator, which only exercises the",
          '> pipeline. Do not train on it; run again with real model endpoints.',
          '',
        ]
      : []),
    `${c.kept_in_dataset} instruction-response pairs for supervised fine-tuning of the **target** model` +
      (roles ? ` (\`${roles.target.model}\`)` : '') +
      ', generated from a small set of seed instructions with the CodecLM method and kept only where the' +
      ' target model still answers clearly worse than the strong model. The data is tailored: its use cases' +
      ' and skills follow those of the seeds, not a generic mix.',
    '',
    '## How it was made',
    '',
    'The method is CodecLM (Wang et al., "CodecLM: Aligning Language Models with Tailored Synthetic Data", NAACL 2024 Findings),' +
      ' run by codeclm as durable Temporal workflows:',
    '',
    `1. **Encode.** The strong model read each of the ${c.seeds} seed instructions and named its use case and at most ${m?.skillsPerSeed ?? 3} skills.`,
    `2. **Metadata pool.** ${c.pool} combinations were drawn by mix-and-match: a use case drawn from the seeds' use cases, paired with ` +
      `${m ? `${m.skillsPerEntryMin}-${m.skillsPerEntryMax}` : 'one or more'} skills from the union of the seeds' skills` +
      `${m ? ` (weighted by ${m.skillWeighting === 'frequency' ? 'how often the seeds use them' : 'nothing: uniformly'}, run seed ${m.runSeed})` : ''}.`,
    `3. **Decode.** For each combination the strong model wrote new instructions zero-shot (no seed shown)${m ? `, at temperature ${m.decodeTemperature}` : ''}; ${c.instructions} in all.`,
    `4. **Self-Rubrics.** For each combination the strong model wrote ${m?.rubrics ?? 4} rubrics of what makes such an instruction hard, with an action each; ` +
      `an instruction judged too easy was rewritten applying one action drawn at random, up to ${m?.maxIterations ?? 4} iterations in all (the basic instruction is iteration 1).`,
    `5. **Contrastive Filtering.** After every iteration both models answered and the judge scored both answers 1-10 in one pairwise prompt, twice with the order swapped, averaging each answer's scores. ` +
      `A pair was kept when the gap S(strong) - S(target) exceeded theta = ${m?.theta ?? 3} (with the strong answer)` +
      ` or fell below -theta (with the target's answer, ${fromTarget} pairs); otherwise the instruction went to the next iteration, and was dropped after the last.` +
      (m?.minStrongScore !== undefined
        ? ` Kept strong answers also had to score at least ${m.minStrongScore}.`
        : ''),
    ...qualityStep(m, c, r.removed?.benchmarks?.length ?? 0),
    '',
    ...(roles
      ? [
          '### Models',
          '',
          table(
            ['role', 'model', 'endpoint host', 'what it did'],
            [
              [
                'strong',
                roles.strong.model,
                roles.strong.endpoint,
                'encoded seeds, wrote and improved instructions and rubrics, answered',
              ],
              [
                'target',
                roles.target.model,
                roles.target.endpoint,
                'answered (the model this data is meant to improve)',
              ],
              [
                'judge',
                roles.judge.model,
                roles.judge.endpoint,
                `scored answer pairs at temperature ${roles.judge.temperature ?? m?.judgeTemperature ?? 0}`,
              ],
            ],
          ),
          '',
        ]
      : []),
    '### This run',
    '',
    table(
      ['seeds', 'pool', 'instructions', 'kept', 'dropped', 'failed', 'kept at iteration 1'],
      [[c.seeds, c.pool, c.instructions, c.kept_in_dataset, c.dropped, c.failed, firstIteration]],
    ),
    '',
    `Wall time ${r.wall_seconds} s; ${r.usage.total.calls} LLM calls, ${r.usage.total.prompt_tokens + r.usage.total.completion_tokens} tokens` +
      `${cost ? `, about ${money(cost.total_usd)}` : ''}. Jensen-Shannon divergence of the kept data's use cases from the seeds': ` +
      `${r.divergence.use_cases.seeds_kept === null ? 'n/a' : r.divergence.use_cases.seeds_kept.toFixed(3)} (0 = same mix). ` +
      'The full run report is in `report.md` and `report.html`.',
    '',
    ...(topUseCases.length
      ? ['Most frequent use cases: ' + topUseCases.map(([k, n]) => `${k} (${n})`).join(', ') + '.', '']
      : []),
    ...(topSkills.length
      ? ['Most frequent skills: ' + topSkills.map(([k, n]) => `${k} (${n})`).join(', ') + '.', '']
      : []),
    '## Fields',
    '',
    table(
      ['field', 'type', 'meaning'],
      [
        ['id', 'string', 'record id: round, pool entry and instruction number'],
        ['instruction', 'string', 'the instruction, after its Self-Rubrics improvements'],
        ['response', 'string', 'the answer to train on'],
        ['source', 'string', '"strong" (usual) or "target" (the target answered much better)'],
        ['metadata.use_case', 'string', "the pool entry's use case"],
        ['metadata.skills', 'list of strings', "the pool entry's skills"],
        ['iteration', 'int', '1 = basic instruction; 2-4 = after that many minus one improvements'],
        ['scores.strong / scores.target', 'float', 'judge scores (1-10) averaged over both answer orders'],
        ['scores.gap', 'float', 'scores.strong - scores.target'],
        ['run_id', 'string', 'the codeclm run that produced the record'],
        ['actions', 'list of strings', 'the Self-Rubrics actions applied, in order'],
      ],
    ),
    '',
    '## Use and limits',
    '',
    '- Made for fine-tuning the target model named above; the filter chose instructions *that model* finds hard, so the data is less useful for other models.',
    '- Responses are model output and can be wrong. The judge is an LLM, with its own biases; swapping the answer order only reduces position bias.',
    '- The terms of the models used apply to their outputs. Set `license` in this header to the one that fits before publishing.',
    '- The language tag assumes English seeds; change it if the seeds were in another language.',
    '',
    '## Citation',
    '',
    '```bibtex',
    '@inproceedings{wang2024codeclm,',
    '  title     = {CodecLM: Aligning Language Models with Tailored Synthetic Data},',
    '  author    = {Wang, Zifeng and Li, Chun-Liang and Perot, Vincent and Le, Long T. and Miao, Jin and Zhang, Zizhao and Lee, Chen-Yu and Pfister, Tomas},',
    '  booktitle = {Findings of the Association for Computational Linguistics: NAACL 2024},',
    '  year      = {2024},',
    '  note      = {arXiv:2404.05875}',
    '}',
    '```',
    '',
  ].join('\n');
}

/** Step 6 of the card: what was removed after decode (src/quality), when the run removed anything. */
function qualityStep(m: MethodConfig | undefined, c: Report['counts'], benchmarkFiles: number): string[] {
  const removed = removedCounts(c);
  const d = m ? dedupeSettings(m) : undefined;
  const parts: string[] = [];
  if (d && d.mode !== 'off')
    parts.push(
      d.mode === 'near'
        ? `exact duplicates (${removed['exact-duplicate']}) and near duplicates at word-${d.shingle}-shingle Jaccard >= ${d.threshold} (${removed['near-duplicate']}, by MinHash LSH)`
        : `exact duplicates (${removed['exact-duplicate']})`,
    );
  if (removed.contaminated > 0 || benchmarkFiles > 0)
    parts.push(
      `instructions sharing a ${m ? ngramOf(m) : 13}-word n-gram with a benchmark item (${removed.contaminated})`,
    );
  return parts.length ? [`6. **Removed after decode**, before any answer: ${parts.join('; ')}.`] : [];
}
