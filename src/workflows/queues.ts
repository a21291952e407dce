import type { RoleName } from '../schemas/config';

/**
 * The task queue of a role's LLM activities: `<queue>-llm-<role>`. Plain code (no workflow APIs),
 * so both the workflows (which schedule on it) and the workers (which poll it) import it.
 */
export function roleQueue(taskQueue: string, role: RoleName): string {
  return `${taskQueue}-llm-${role}`;
}
