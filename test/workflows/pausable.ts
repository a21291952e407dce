import { condition, defineQuery, defineSignal, setHandler } from '@temporalio/workflow';

export { codeclmBatcher } from '../../src/workflows/batcher';

export const pauseSignal = defineSignal<[boolean]>('setPaused');
export const endSignal = defineSignal('end');

/**
 * Test workflow: stands for a run that stays open until ended and that can be paused: it answers
 * the `progress` query with the state the batcher reads (src/batch/activities.ts, runState).
 */
export async function pausableRun(): Promise<void> {
  let paused = false;
  let ended = false;
  setHandler(pauseSignal, (p) => void (paused = p));
  setHandler(endSignal, () => void (ended = true));
  setHandler(defineQuery<{ state: string }>('progress'), () => ({ state: paused ? 'paused' : 'running' }));
  await condition(() => ended);
}
