import type { CommandSpec } from './command';
import { provisionCommand } from './provision';
import { simLlmCommand } from './simLlm';
import { serverCommand } from './server';
import { runCommand } from './run';
import { planCommand } from './plan';
import { checkCommand } from './check';
import { evalCommand } from './eval';
import { demoCommand } from './demo';
import { codecServerCommand } from './codecServer';
import { benchCommand } from './bench';
import { chaosCommand } from './chaos';
import { scheduleCommand } from './schedule';
import { cacheCommand } from '../cache/command';
import {
  cancelCommand,
  exportCommand,
  pauseCommand,
  resumeCommand,
  statusCommand,
  waitCommand,
  workerCommand,
} from './control';

/**
 * Every CLI command, in the order `codeclm --help` lists them: the product's commands, then the
 * developer tools (marked `devTool`, listed in a section of their own).
 */
export const commands = [
  runCommand,
  planCommand,
  evalCommand,
  checkCommand,
  workerCommand,
  serverCommand,
  statusCommand,
  waitCommand,
  pauseCommand,
  resumeCommand,
  cancelCommand,
  exportCommand,
  scheduleCommand,
  cacheCommand,
  demoCommand,
  simLlmCommand,
  codecServerCommand,
  provisionCommand,
  benchCommand,
  chaosCommand,
] as CommandSpec<never>[];
