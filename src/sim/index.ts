export {
  startSimulator,
  type Simulator,
  type SimulatorOptions,
  type SimRequestLog,
  type SimStats,
} from './server';
export type { ScriptItem } from './faults';
export { simDialects, type SimDialect } from './dialects';
export { CONSTRAINT_PREFIX, splitInstruction } from './content';
export { tierOf, TUNING } from './answers';
