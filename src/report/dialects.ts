import type { RoleName, StructuredDialect } from '../schemas/config';
import type { Usage } from '../schemas/records';

/**
 * The structured-output dialect each role's calls used (src/llm/dialect.ts), as the usage cells
 * carry it ("stage/role" keys, the latest call's dialect per cell), for `status` and report.md.
 */
export interface RoleDialect {
  role: RoleName;
  /** Distinct dialects this role's stages used, usually one. */
  dialects: StructuredDialect[];
  /** True when auto mode found it; false when the config set it. */
  auto: boolean;
}

const ROLES: RoleName[] = ['strong', 'target', 'judge'];

export function dialectsByRole(usage: Usage): RoleDialect[] {
  const out: RoleDialect[] = [];
  for (const role of ROLES) {
    const cells = Object.entries(usage)
      .filter(([key, cell]) => key.endsWith(`/${role}`) && cell.dialect)
      .map(([, cell]) => cell);
    if (!cells.length) continue;
    out.push({
      role,
      dialects: [...new Set(cells.map((c) => c.dialect!))].sort(),
      auto: cells.some((c) => c.dialectAuto),
    });
  }
  return out;
}

/** "json_object_schema (auto)": what a role's structured calls were sent as, and who chose it. */
export function dialectText(d: RoleDialect): string {
  return `${d.dialects.join(', ')} (${d.auto ? 'auto' : 'configured'})`;
}

/** Status lines: one per role that made structured calls. */
export function dialectLines(usage: Usage): string[] {
  return dialectsByRole(usage).map((d) => `${d.role}: structured output: ${dialectText(d)}`);
}
