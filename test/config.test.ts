import path from 'node:path';
import { describeConfig, loadConfig } from '../src/config/load';
import { editDistance, suggest } from '../src/config/suggest';
import { tmpDir } from './helpers/env';
import { errorOf } from './helpers/expect';
import { writer } from './helpers/files';

const dir = tmpDir('codeclm-config-');
const write = writer(dir);

describe('loadConfig without a file', () => {
  test('uses OpenAI env vars and default models; the judge is the strong role', () => {
    const cfg = loadConfig(undefined, {});
    expect(cfg.roles.strong).toMatchObject({
      baseURL: 'https://api.openai.com/v1',
      model: 'gpt-4o',
      apiKeyEnv: 'OPENAI_API_KEY',
    });
    expect(cfg.roles.target.model).toBe('gpt-4o-mini');
    expect(cfg.roles.judge).toMatchObject({ baseURL: cfg.roles.strong.baseURL, model: 'gpt-4o' });
    expect(cfg.roles.judge.temperature).toBeUndefined();
    expect(cfg.method.judgeTemperature).toBe(0);
    expect(cfg.method).toMatchObject({
      poolSize: 200,
      skillsPerSeed: 3,
      rubrics: 4,
      maxIterations: 4,
      theta: 3,
      decodeTemperature: 0.7,
    });
  });

  test('reads OPENAI_BASE_URL and CODECLM_*_MODEL; blank values count as unset', () => {
    const cfg = loadConfig(undefined, {
      OPENAI_BASE_URL: 'http://127.0.0.1:8787/v1',
      CODECLM_STRONG_MODEL: 's',
      CODECLM_TARGET_MODEL: 't',
      CODECLM_JUDGE_MODEL: ' ',
    });
    expect(cfg.roles.strong).toMatchObject({ baseURL: 'http://127.0.0.1:8787/v1', model: 's' });
    expect(cfg.roles.target).toMatchObject({ baseURL: 'http://127.0.0.1:8787/v1', model: 't' });
    expect(cfg.roles.judge.model).toBe('s');
    expect(loadConfig(undefined, { CODECLM_JUDGE_MODEL: 'j' }).roles.judge.model).toBe('j');
  });

  test('rejects a malformed OPENAI_BASE_URL', () => {
    expect(errorOf(() => loadConfig(undefined, { OPENAI_BASE_URL: 'localhost:8000' })).message).toMatch(
      /OPENAI_BASE_URL: expected an http\(s\) URL/,
    );
  });

  test('--size overrides limits.size and must be a positive integer', () => {
    expect(loadConfig(undefined, {}, { size: 17 }).limits.size).toBe(17);
    expect(errorOf(() => loadConfig(undefined, {}, { size: 0 })).message).toMatch(/--size/);
  });
});

describe('loadConfig with a file', () => {
  test('the bundled JSON and YAML examples are valid and equivalent', () => {
    const json = loadConfig(path.join(__dirname, '../examples/codeclm.config.json'), {});
    const yaml = loadConfig(path.join(__dirname, '../examples/codeclm.config.yaml'), {});
    expect(yaml).toEqual(json);
    expect(json.roles.strong).toMatchObject({ baseURL: 'http://127.0.0.1:8787/v1', model: 'sim-strong' });
    expect(json.roles.target.model).toBe('sim-target');
    expect(json.roles.judge.model).toBe('sim-strong');
    // Every default is spelt out, so the example equals the defaults with the simulator's endpoints.
    const defaults = loadConfig(undefined, {});
    expect(json.method).toEqual(defaults.method);
    expect(json.limits).toEqual(defaults.limits);
  });

  test('the config file wins over env; env fills what it leaves out', () => {
    const file = write(
      'partial.yaml',
      'roles:\n  target:\n    baseURL: http://10.0.0.5:8000/v1\n    model: llama\n',
    );
    const cfg = loadConfig(file, {
      OPENAI_BASE_URL: 'http://gw/v1',
      CODECLM_TARGET_MODEL: 'ignored',
      CODECLM_STRONG_MODEL: 'big',
    });
    expect(cfg.roles.target).toMatchObject({ baseURL: 'http://10.0.0.5:8000/v1', model: 'llama' });
    expect(cfg.roles.strong).toMatchObject({ baseURL: 'http://gw/v1', model: 'big' });
  });

  test('a partial judge inherits the strong role except its temperature', () => {
    const file = write(
      'judge.json',
      JSON.stringify({
        roles: {
          strong: {
            baseURL: 'http://strong/v1',
            model: 'big',
            apiKeyEnv: 'STRONG_KEY',
            temperature: 0.9,
            rpm: 60,
          },
          judge: { model: 'judge-m' },
        },
      }),
    );
    const cfg = loadConfig(file, {});
    expect(cfg.roles.judge).toMatchObject({
      baseURL: 'http://strong/v1',
      model: 'judge-m',
      apiKeyEnv: 'STRONG_KEY',
      rpm: 60,
    });
    expect(cfg.roles.judge.temperature).toBeUndefined();
    expect(cfg.roles.strong.temperature).toBe(0.9);
  });

  test('lists every invalid field with its path, expectation and line', () => {
    const file = write(
      'bad.yaml',
      [
        'roles:',
        '  strong:',
        '    temperature: 5',
        '    maxTokens: 1.5',
        '    baseURL: not a url',
        '    structuredOutput: json',
        '  target:',
        '    modle: x',
        'method:',
        '  pool_size: 10',
        '  skillsPerEntryMin: 4',
        '  theta: 12',
        'limits:',
        '  concurrency: 0',
      ].join('\n'),
    );
    const err = errorOf(() => loadConfig(file, {}));
    expect(err.message).toContain(file);
    expect(err.message).toContain('roles.strong.temperature: expected number <= 2, got 5 (line 3)');
    expect(err.message).toContain('roles.strong.maxTokens: expected an integer, got 1.5');
    expect(err.message).toMatch(/roles\.strong\.baseURL: expected a URL.*got "not a url"/);
    expect(err.message).toMatch(
      /roles\.strong\.structuredOutput: expected one of "auto" \| "json_schema" \| "json_object_schema" \| "json_object" \| "text"/,
    );
    expect(err.message).toContain('roles.target.modle: unknown field (did you mean "model"?) (line 8)');
    expect(err.message).toContain('method.pool_size: unknown field (did you mean "poolSize"?)');
    expect(err.message).toContain('method.skillsPerEntryMin: must be <= method.skillsPerEntryMax (3), got 4');
    expect(err.message).toMatch(/method\.theta: expected number < 9, got 12/);
    expect(err.message).toContain('limits.concurrency: expected number > 0, got 0');
    expect(err.problems).toHaveLength(9);
  });

  test('rejects an apiKey anywhere, and never echoes it', () => {
    const file = write(
      'key.json',
      JSON.stringify({ roles: { strong: { apiKey: 'sk-secret123' }, judge: { api_key: 'sk-secret456' } } }),
    );
    const err = errorOf(() => loadConfig(file, {}));
    expect(err.message).toMatch(
      /roles\.strong\.apiKey: API keys are not accepted in config files.*apiKeyEnv/,
    );
    expect(err.message).toMatch(/roles\.judge\.api_key: API keys are not accepted/);
    expect(err.message).not.toContain('sk-secret');
    expect(err.problems).toHaveLength(2);
  });

  test('apiKeyEnv must name an env var; a pasted key is rejected without echoing it', () => {
    const file = write('keyenv.json', JSON.stringify({ roles: { target: { apiKeyEnv: 'sk-abc-123' } } }));
    const err = errorOf(() => loadConfig(file, {}));
    expect(err.message).toMatch(/roles\.target\.apiKeyEnv: must be the NAME of an environment variable/);
    expect(err.message).not.toContain('sk-abc-123');
  });

  test('unknown top-level keys get a suggestion', () => {
    const err = errorOf(() => loadConfig(write('top.json', '{"limts": {}, "role": {}}'), {}));
    expect(err.message).toContain('limts: unknown field (did you mean "limits"?)');
    expect(err.message).toContain('role: unknown field (did you mean "roles"?)');
  });

  test('JSON syntax errors give line and column', () => {
    const err = errorOf(() =>
      loadConfig(write('syntax.json', '{\n  "method": {\n    "theta": 3,\n  }\n}'), {}),
    );
    expect(err.message).toMatch(/syntax\.json: invalid JSON at line 4, column 3/);
    const err2 = errorOf(() => loadConfig(write('syntax2.json', '{\n  "method": {"theta": tru}\n}'), {}));
    expect(err2.message).toMatch(/syntax2\.json: invalid JSON at line 2, column \d+/);
  });

  test('YAML syntax errors give line and column', () => {
    const err = errorOf(() => loadConfig(write('syntax.yaml', 'method:\n  theta: 3\n   rubrics: 4\n'), {}));
    expect(err.message).toMatch(/syntax\.yaml: invalid YAML/);
    expect(err.message).toMatch(/line \d+, column \d+: /);
  });

  test('missing, empty, non-object and wrongly named files', () => {
    expect(errorOf(() => loadConfig(path.join(dir, 'nope.json'), {})).message).toMatch(
      /config file not found: .*nope\.json/,
    );
    expect(errorOf(() => loadConfig(write('empty.yaml', '  \n'), {})).message).toMatch(
      /empty\.yaml is empty/,
    );
    expect(errorOf(() => loadConfig(write('list.json', '[1]'), {})).message).toMatch(
      /expected an object at the top level/,
    );
    expect(errorOf(() => loadConfig(write('cfg.toml', 'x = 1'), {})).message).toMatch(
      /unsupported extension "\.toml"/,
    );
  });
});

describe('describeConfig', () => {
  test('has hosts, models and params but no key or env value', () => {
    const env = { OPENAI_BASE_URL: 'https://gateway.example.com:8443/v1', OPENAI_API_KEY: 'sk-very-secret' };
    const config = loadConfig(undefined, env);
    // loadConfig refuses credentials in URLs; describeConfig still strips them, as a second guard.
    config.roles.strong.baseURL = 'https://user:pw@gateway.example.com:8443/v1?key=abc';
    const summary = describeConfig(config);
    expect(summary.roles.strong).toMatchObject({
      endpoint: 'gateway.example.com:8443',
      model: 'gpt-4o',
      apiKeyEnv: 'OPENAI_API_KEY',
    });
    expect(summary.roles.judge.model).toBe('gpt-4o');
    expect(summary.method.poolSize).toBe(200);
    expect(summary.limits.size).toBe(200);
    const text = JSON.stringify(summary);
    expect(text).not.toContain('sk-very-secret');
    expect(text).not.toContain('pw');
    expect(text).not.toContain('abc');
  });
});

describe('suggest', () => {
  test('ignores case and separators, tolerates small typos, refuses far ones', () => {
    expect(suggest('pool_size', ['poolSize', 'theta'])).toBe('poolSize');
    expect(suggest('modle', ['model', 'baseURL'])).toBe('model');
    expect(suggest('banana', ['model', 'baseURL'])).toBeUndefined();
    expect(editDistance('abc', 'acb')).toBe(1);
  });
});

test('an endpoint URL that carries credentials is refused without echoing them', () => {
  for (const url of ['https://user:hunter2@llm.example/v1', 'https://llm.example/v1?api-key=hunter2']) {
    let message = '';
    try {
      loadConfig(undefined, { OPENAI_BASE_URL: url });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('roles.strong.baseURL: credentials in the URL are not accepted');
    expect(message).not.toContain('hunter2');
  }
});
