import { condition, defineQuery, defineSignal, setHandler } from '@temporalio/workflow';

export { codeclmBatcher } from '../../src/workflows/batcher';

export const pauseSignal = defineSignal<[boolean]>('setPaused');
export const endSignal = defineSignal('end');
/** Makes the `progress` query fail (as one can while the run's workflow task is slow) or answer again. */
export const queryFailsSignal = defineSignal<[boolean]>('queryFails');

/**
 * Test workflow: stands for a run that stays open until ended and that can be paused: it answers
 * the `progress` query with the state the batcher reads (src/batch/activities.ts, runState).
 */
export async function pausableRun(): Promise<void> {
  let paused = false;
  let ended = false;
  let queryFails = false;
  setHandler(pauseSignal, (p) => void (paused = p));
  setHandler(endSignal, () => void (ended = true));
  setHandler(queryFailsSignal, (f) => void (queryFails = f));
  setHandler(defineQuery<{ state: string }>('progress'), () => {
    if (queryFails) throw new Error('progress is not available right now');
    return { state: paused ? 'paused' : 'running' };
  });
  await condition(() => ended);
}
