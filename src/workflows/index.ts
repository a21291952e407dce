export { codeclmRun, encodeSeeds, generateForEntry, refineInstruction } from './pipeline';
export { codeclmEval, evalChunk, evalInstruction } from './eval';
export { codeclmScheduledRun } from './scheduled';
export { codeclmBatcher } from './batcher';
