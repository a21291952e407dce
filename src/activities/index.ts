import type { ActivityDeps } from './deps';
import { createStageActivities } from './stages';
import { createSinkActivities } from './sink';
import { createEvalActivities } from './eval';
import { createRunStateActivities } from './runState';
import { createQualityActivities } from './quality';
import { createBatchActivities } from '../batch/activities';

/** All activities of a worker, built from injected dependencies (LLM client factory, clock). */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createStageActivities(deps),
    ...createSinkActivities(),
    ...createEvalActivities(),
    ...createRunStateActivities(),
    ...createQualityActivities(),
    ...createBatchActivities(),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps } from './deps';
