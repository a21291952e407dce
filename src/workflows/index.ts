export { codeclmRun, encodeSeeds, generateForEntry, refineInstruction } from './pipeline';
