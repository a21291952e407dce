import type { ResolvedConfig, ResolvedRole } from '../schemas/config';

/**
 * A summary of a resolved config for reports, logs and `status`: which endpoint and model each role
 * uses and the method and limits in force. It holds no key and no env var value, only the env var's
 * name, so it is safe to print and to store in run history.
 */

export interface RoleSummary {
  endpoint: string;
  model: string;
  apiKeyEnv: string;
  temperature?: number;
  maxTokens: number;
  maxConcurrency: number;
  rpm?: number;
  tpm?: number;
  structuredOutput: string;
}

export interface ConfigSummary {
  roles: Record<'strong' | 'target' | 'judge', RoleSummary>;
  method: ResolvedConfig['method'];
  limits: ResolvedConfig['limits'];
}

/** Host (and port) only: a base URL's userinfo or query string could carry a credential. */
function endpointHost(baseURL: string): string {
  try {
    return new URL(baseURL).host;
  } catch {
    return '(invalid URL)';
  }
}

function summariseRole(role: ResolvedRole): RoleSummary {
  const out: RoleSummary = {
    endpoint: endpointHost(role.baseURL),
    model: role.model,
    apiKeyEnv: role.apiKeyEnv,
    maxTokens: role.maxTokens,
    maxConcurrency: role.maxConcurrency,
    structuredOutput: role.structuredOutput,
  };
  if (role.temperature !== undefined) out.temperature = role.temperature;
  if (role.rpm !== undefined) out.rpm = role.rpm;
  if (role.tpm !== undefined) out.tpm = role.tpm;
  return out;
}

export function describeConfig(cfg: ResolvedConfig): ConfigSummary {
  return {
    roles: {
      strong: summariseRole(cfg.roles.strong),
      target: summariseRole(cfg.roles.target),
      judge: summariseRole(cfg.roles.judge),
    },
    method: { ...cfg.method },
    limits: { ...cfg.limits },
  };
}
