/**
 * The CodecLM pipeline (docs/method.md) as durable Temporal workflows. This module is their public
 * face (the CLI, the bench and the tests import from here); the code is in one file per seam:
 *
 *   codeclmRun          run.ts        seeds -> encode (fan-out) -> metadata pool -> per pool entry,
 *                                     round by round; its state and handlers in runState.ts
 *   ├─ encodeSeeds      encode.ts     encode one chunk of seeds, one activity per seed
 *   └─ generateForEntry entry.ts      the CodecLM loop of one pool entry (loop.ts): rubrics, decode
 *                                     its share, and per instruction (improve) -> both answers ->
 *                                     judge both orders -> keep / iterate / drop; its steps are
 *                                     activities (instruction.ts), its decode-ahead queue window.ts
 *   (refineInstruction  legacy/       one instruction per workflow, only for histories from before)
 *
 * Texts live only in the histories of the entry workflows (each continues-as-new as its history
 * grows); the run sees counts and scores. Every LLM call is its own activity, so a crash repeats at
 * most the calls in flight. Every random choice comes from the run seed (src/util/random), so a
 * seed gives one dataset.
 *
 * Any size (issue 4): the tree is run -> entries -> instructions, each level with a bounded window;
 * the run and the entries continue-as-new at safe points (nothing in flight, nothing decoded but
 * not started) when their history grows, carrying counters and indexes only, never texts. Entries
 * report finished items to the run by signal (src/workflows/control.ts), so the run's progress
 * query and budget check are live and cheap. Pause, resume and the budget reach every running
 * workflow of the tree by `control` signals.
 */
export { codeclmRun } from './run';
export { pauseSignal, progressQuery, resumeSignal } from './runState';
export { ENCODE_CHUNK, encodeSeeds } from './encode';
export { generateForEntry } from './entry';
export { refineInstruction } from './legacy';
