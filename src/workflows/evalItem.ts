/**
 * One instruction of an evaluation (CRR, docs/method.md section 7) as a workflow, started by
 * evalChunk (src/workflows/eval.ts): two answers, two judgements in swapped order, one verdict.
 */
import type { EvalRecord } from '../activities/eval';
import { scoresFromJudgements, verdict, type Verdict } from '../report/crr';
import type { ResolvedConfig } from '../schemas/config';
import { addUsage, usageInFailure, type Usage } from '../schemas/records';
import { failureMessage } from '../util/failure';
import { fileActivities, llmActivities } from './activities';
import { answerBoth, judgeBothOrders } from './contrast';
import { isItemFailure } from './failures';

export interface EvalItemInput {
  evalId: string;
  outDir: string;
  index: number;
  config: ResolvedConfig;
  taskQueue?: string;
}

export interface EvalItemOutcome {
  index: number;
  status: 'judged' | 'failed';
  verdict?: Verdict;
  stage?: string;
  reason?: string;
  usage: Usage;
}

export async function evalInstruction(input: EvalItemInput): Promise<EvalItemOutcome> {
  const { config, index, outDir } = input;
  const { roles } = config;
  const llm = llmActivities(config.limits, input.taskQueue);
  const files = fileActivities(input.taskQueue);
  const usage: Usage = {};
  const state = await files.loadEvalItem({ outDir, index });
  const { item } = state;
  // A previous attempt (a reset, a re-run with the same id) already judged this one: no new calls.
  if (state.done) return { index, status: 'judged', verdict: state.done.verdict, usage };

  // The judge always runs at temperature 0 here, whatever the config says for the pipeline.
  const method = { ...config.method, judgeTemperature: 0 };
  const judgeRole = roles.judge.temperature ? { ...roles.judge, temperature: 0 } : roles.judge;
  let stage = 'answer';
  try {
    const contrast = { instruction: item.instruction, label: `eval ${item.id}`, method, usage };
    const answers = await answerBoth(llm, roles, contrast);

    stage = 'judge';
    const judged = await judgeBothOrders(llm, judgeRole, contrast, answers);
    const scores = scoresFromJudgements(judged.targetFirst, judged.strongFirst);
    const v = verdict(scores);

    stage = 'save';
    const record: EvalRecord = {
      index,
      id: item.id,
      category: item.category ?? null,
      instruction: item.instruction,
      target_answer: answers.target,
      strong_answer: answers.strong,
      scores,
      verdict: v,
      eval_id: input.evalId,
    };
    await files.saveEvalResult({ outDir, record });
    return { index, status: 'judged', verdict: v, usage };
  } catch (err) {
    if (!isItemFailure(err)) throw err;
    addUsage(usage, usageInFailure(err)); // the calls the failed attempts made are billed too
    // A poison item (output that never validates, a rejected request) is reported with its reason.
    const reason = failureMessage(err);
    await files.saveEvalFailure({
      outDir,
      failure: { index, id: item.id, category: item.category ?? null, stage, reason },
    });
    return { index, status: 'failed', stage, reason, usage };
  }
}
