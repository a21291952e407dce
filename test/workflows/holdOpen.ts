import { condition, defineSignal, setHandler } from '@temporalio/workflow';

export { codeclmBatcher } from '../../src/workflows/batcher';

export const releaseSignal = defineSignal('release');

/**
 * Test workflow: stands for a run that stays open until released, so the batcher serving its
 * batch-mode calls keeps running (a batcher ends once its run has closed).
 */
export async function holdOpen(): Promise<void> {
  let released = false;
  setHandler(releaseSignal, () => void (released = true));
  await condition(() => released);
}
