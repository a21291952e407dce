import type { Command } from './command';
import { provisionCommand } from './provision';
import { serverCommand } from './server';

/** Every CLI command, in the order `codeclm --help` lists them. */
export const commands: Command[] = [provisionCommand, serverCommand];
