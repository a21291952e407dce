export {
  DEFAULT_SIM_PRICES,
  startSimulator,
  type Simulator,
  type SimulatorOptions,
  type SimPrices,
  type SimRequestLog,
  type SimStats,
} from './server';
export type { BatchStats, FileStats, LineFailure, SimBatchOptions } from './batches';
export type { ScriptItem } from './faults';
export { simDialects, type SimDialect } from './dialects';
export { CONSTRAINT_PREFIX, splitInstruction } from './content';
export { tierOf, TUNING } from './answers';
