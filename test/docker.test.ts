import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import YAML from 'yaml';

/**
 * temporal-docker/ and the Dockerfile, checked without a Docker engine (none runs here): the compose
 * file's services, images, ordering, ports and environment; the worker image built from this repo's
 * Dockerfile, whose only RUN is the `npm ci` CI runs; and `docker compose config` when the compose
 * plugin is installed.
 */
const root = path.join(__dirname, '..');
const dockerDir = path.join(root, 'temporal-docker');
const composeFile = path.join(dockerDir, 'docker-compose.yml');
const composeText = fs.readFileSync(composeFile, 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  volumes?: string[];
  profiles?: string[];
  deploy?: { replicas?: number | string };
  stop_grace_period?: string;
}
const compose = YAML.parse(composeText, { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const svc = (name: string): Service => {
  const s = services[name];
  if (!s) throw new Error(`no service ${name}`);
  return s;
};
const text = (v: string[] | string | undefined) => (Array.isArray(v) ? v.join(' ') : (v ?? ''));

describe('temporal-docker/docker-compose.yml', () => {
  test('has PostgreSQL, schema setup, server, namespace setup, Web UI, MinIO and codeclm workers', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'codec-server',
        'codeclm',
        'minio',
        'minio-bucket',
        'postgresql',
        'sim-llm',
        'temporal',
        'temporal-namespace',
        'temporal-schema',
        'temporal-ui',
        'worker',
      ].sort(),
    );
    expect(svc('postgresql').image).toMatch(/^postgres:/);
    expect(svc('temporal-schema').image).toMatch(/^temporalio\/admin-tools:/);
    expect(svc('temporal').image).toMatch(/^temporalio\/server:/);
    expect(svc('temporal-namespace').image).toMatch(/^temporalio\/admin-tools:/);
    expect(svc('temporal-ui').image).toMatch(/^temporalio\/ui:/);
  });

  test("the schema is set up by Temporal's own temporal-sql-tool, for both databases, before the server starts", () => {
    const schema = svc('temporal-schema');
    const script = text(schema.command);
    expect(script).toContain('temporal-sql-tool');
    expect(script).toMatch(/setup-schema -v 0\.0/);
    expect(script).toMatch(/update-schema -d/);
    expect(script).toContain('/etc/temporal/schema/postgresql/v12');
    expect(script).toContain('temporal:temporal');
    expect(script).toContain('temporal_visibility:visibility');
    expect(schema.environment).toMatchObject({ SQL_PLUGIN: 'postgres12', SQL_HOST: 'postgresql' });
    expect(schema.depends_on).toEqual({ postgresql: { condition: 'service_healthy' } });

    const server = svc('temporal');
    expect(server.depends_on).toEqual({ 'temporal-schema': { condition: 'service_completed_successfully' } });
    expect(server.environment).toMatchObject({
      DB: 'postgres12',
      POSTGRES_SEEDS: 'postgresql',
      DBNAME: 'temporal',
      VISIBILITY_DBNAME: 'temporal_visibility',
    });
    // The dynamic config it names is the file mounted from this directory.
    const dyn = server.environment!.DYNAMIC_CONFIG_FILE_PATH!;
    expect(server.volumes).toContain('./dynamicconfig:/etc/temporal/config/dynamicconfig:ro');
    const local = path.join(dockerDir, 'dynamicconfig', path.basename(dyn));
    expect(dyn).toBe(`config/dynamicconfig/${path.basename(dyn)}`);
    const dynamic = YAML.parse(fs.readFileSync(local, 'utf8')) as Record<string, { value: unknown }[]>;
    expect(dynamic['limit.blobSize.error']![0]!.value).toBe(2 * 1024 * 1024);
    expect(svc('postgresql').volumes).toContain('postgres-data:/var/lib/postgresql/data');
  });

  test('ports: gRPC 7233, the UI, and the codec server on localhost only', () => {
    expect(svc('temporal').ports).toEqual(['${TEMPORAL_PORT:-7233}:7233']);
    expect(svc('temporal-ui').ports).toEqual(['${TEMPORAL_UI_PORT:-8080}:8080']);
    expect(svc('codec-server').ports).toEqual(['127.0.0.1:${CODECLM_CODEC_PORT:-8888}:8888']);
    expect(svc('postgresql').ports).toBeUndefined();
    for (const name of ['worker', 'codeclm', 'sim-llm']) expect(svc(name).ports).toBeUndefined();
    const ui = svc('temporal-ui').environment!;
    expect(ui.TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(ui.TEMPORAL_CODEC_ENDPOINT).toBe('${CODECLM_UI_CODEC_ENDPOINT:-}');
    // The codec server lets the UI's origin call it from the browser.
    expect(text(svc('codec-server').command)).toContain(
      '--cors-origin http://localhost:${TEMPORAL_UI_PORT:-8080}',
    );
  });

  test('N workers built from the repository Dockerfile, against temporal:7233, keys from the environment', () => {
    const worker = svc('worker');
    expect(path.resolve(dockerDir, worker.build!.context)).toBe(root);
    expect(fs.existsSync(path.join(root, worker.build!.dockerfile ?? 'Dockerfile'))).toBe(true);
    expect(worker.command).toEqual(['worker', '--concurrency', '${CODECLM_WORKER_CONCURRENCY:-64}']);
    expect(worker.deploy?.replicas).toBe('${CODECLM_WORKERS:-2}');
    expect(worker.depends_on).toEqual({
      'temporal-namespace': { condition: 'service_completed_successfully' },
      'minio-bucket': { condition: 'service_completed_successfully' },
    });
    expect(worker.stop_grace_period).toBeDefined();
    for (const name of ['worker', 'codeclm']) {
      const env = svc(name).environment!;
      expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
      expect(env.OPENAI_API_KEY).toBe('${OPENAI_API_KEY:-}');
      expect(env.OPENAI_BASE_URL).toBe('${OPENAI_BASE_URL:-}');
      expect(env.CODECLM_ENCRYPTION_KEY).toBe('${CODECLM_ENCRYPTION_KEY:-}');
    }
    expect(svc('codec-server').environment!.CODECLM_ENCRYPTION_KEY).toBe('${CODECLM_ENCRYPTION_KEY:-}');
    // The CLI, codec server and simulator reuse the worker's image rather than building again.
    for (const name of ['codeclm', 'codec-server', 'sim-llm']) expect(svc(name).image).toBe(worker.image);
    expect(Object.keys(compose.volumes).sort()).toEqual(['minio-data', 'postgres-data']);
  });

  test('workers share no volume: run data goes to MinIO (or any S3) through the AWS SDK variables', () => {
    // No codeclm container mounts anything: seeds, records, dataset and reports are objects.
    for (const name of ['worker', 'codeclm', 'codec-server', 'sim-llm'])
      expect(svc(name).volumes).toBeUndefined();
    for (const name of ['worker', 'codeclm']) {
      const env = svc(name).environment!;
      expect(env.AWS_ENDPOINT_URL_S3).toBe('${CODECLM_S3_ENDPOINT-http://minio:9000}');
      expect(env.AWS_ACCESS_KEY_ID).toBe('${CODECLM_S3_ACCESS_KEY_ID:-codeclm}');
      expect(env.AWS_SECRET_ACCESS_KEY).toMatch(/^\$\{CODECLM_S3_SECRET_ACCESS_KEY:\?/);
      expect(env.AWS_REGION).toBe('${AWS_REGION:-us-east-1}');
    }
    // MinIO's root credentials are the same pair; its API is published on localhost only.
    const minio = svc('minio');
    expect(minio.image).toMatch(/^minio\/minio:/);
    expect(text(minio.command)).toBe('server /data');
    expect(minio.environment!.MINIO_ROOT_USER).toBe('${CODECLM_S3_ACCESS_KEY_ID:-codeclm}');
    expect(minio.environment!.MINIO_ROOT_PASSWORD).toMatch(/^\$\{CODECLM_S3_SECRET_ACCESS_KEY:\?/);
    expect(minio.volumes).toEqual(['minio-data:/data']);
    expect(minio.ports).toEqual(['127.0.0.1:${CODECLM_S3_PORT:-9000}:9000']);
    // The bucket exists before any worker starts.
    const bucket = svc('minio-bucket');
    expect(bucket.depends_on).toEqual({ minio: { condition: 'service_healthy' } });
    expect(text(bucket.command)).toContain('mc mb --ignore-existing "codeclm/$$BUCKET"');
    expect(bucket.environment!.BUCKET).toBe('${CODECLM_S3_BUCKET:-codeclm}');
    expect(svc('codeclm').depends_on).toMatchObject({
      'minio-bucket': { condition: 'service_completed_successfully' },
    });
  });

  test('no secret is written into the compose file; every variable it reads is documented in .env.example', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [k, v] of Object.entries(s.environment ?? {})) {
        if (/KEY|PASSWORD|PWD|SECRET|TOKEN/.test(k))
          expect([name, k, String(v)]).toEqual([
            name,
            k,
            expect.stringMatching(/^\$\{[A-Z_]+(:-|:\?)?[^}]*\}$/),
          ]);
      }
    }
    const used = new Set([...composeText.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!));
    const example = fs.readFileSync(path.join(dockerDir, '.env.example'), 'utf8');
    const documented = new Set([...example.matchAll(/^#?\s*([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]!));
    expect([...used].filter((v) => !documented.has(v))).toEqual([]);
    // And the example holds no values for secrets.
    for (const secret of [
      'POSTGRES_PASSWORD',
      'OPENAI_API_KEY',
      'CODECLM_ENCRYPTION_KEY',
      'CODECLM_S3_SECRET_ACCESS_KEY',
    ])
      expect(example).toMatch(new RegExp(`^${secret}=$`, 'm'));
  });

  const composeAvailable = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0;
  (composeAvailable ? test : test.skip)(
    'docker compose config accepts the file (skipped: no compose plugin on this machine)',
    () => {
      const out = spawnSync(
        'docker',
        [
          'compose',
          '-f',
          composeFile,
          '--profile',
          'cli',
          '--profile',
          'codec',
          '--profile',
          'sim',
          'config',
          '--quiet',
        ],
        {
          encoding: 'utf8',
          env: {
            ...process.env,
            POSTGRES_PASSWORD: 'compose-config-check',
            CODECLM_S3_SECRET_ACCESS_KEY: 'compose-config-check',
          },
        },
      );
      expect(out.stderr).toBe('');
      expect(out.status).toBe(0);
    },
  );
});

describe('Dockerfile', () => {
  const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  // Instructions, with line continuations joined and comments dropped.
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
  const of = (op: string) => instructions.filter((i) => i.op === op).map((i) => i.args);

  test('node:20-slim, non-root, entrypoint node bin/codeclm.js, worker by default', () => {
    expect(of('FROM')).toEqual(['node:20-slim']);
    expect(of('USER')).toEqual(['node']);
    expect(JSON.parse(of('ENTRYPOINT')[0]!)).toEqual(['node', 'bin/codeclm.js']);
    expect(JSON.parse(of('CMD')[0]!)).toEqual(['worker']);
    expect(fs.existsSync(path.join(root, 'bin', 'codeclm.js'))).toBe(true);
    // USER comes after the install, so the app files are not writable by the process.
    const ops = instructions.map((i) => i.op);
    expect(ops.lastIndexOf('RUN')).toBeLessThan(ops.indexOf('USER'));
  });

  test('every RUN is the npm ci that CI runs (.ci/run), without dev dependencies or install scripts', () => {
    const ci = fs.readFileSync(path.join(root, '.ci', 'run'), 'utf8');
    const runs = of('RUN');
    expect(runs.length).toBeGreaterThan(0);
    for (const run of runs) {
      const [cmd, sub, ...flags] = run.split(/\s+/);
      expect(`${cmd} ${sub}`).toBe('npm ci');
      expect(ci).toMatch(/^\s*timeout \S+ npm ci\b/m);
      // Only flags that narrow what CI installs; nothing that fetches or builds anything else.
      for (const f of flags)
        expect(['--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund']).toContain(f);
    }
  });

  test('copies what exists and what the CLI needs at run time; .dockerignore keeps the rest out', () => {
    for (const args of of('COPY')) {
      const parts = args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1))
        expect([src, fs.existsSync(path.join(root, src))]).toEqual([src, true]);
    }
    const copied = of('COPY').flatMap((a) =>
      a
        .split(/\s+/)
        .filter((p) => !p.startsWith('--'))
        .slice(0, -1),
    );
    for (const needed of ['package.json', 'package-lock.json', 'bin', 'src', 'examples'])
      expect(copied).toContain(needed);
    const ignore = fs.readFileSync(path.join(root, '.dockerignore'), 'utf8');
    for (const kept of ['!package.json', '!package-lock.json', '!bin/', '!src/', '!examples/'])
      expect(ignore).toContain(kept);
  });

  test('npm ci --omit=dev installs everything the sources import (tsx and the Temporal SDK are runtime dependencies)', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const deps = Object.keys(pkg.dependencies);
    expect(deps).toEqual(
      expect.arrayContaining(['tsx', '@temporalio/worker', '@temporalio/client', '@temporalio/testing']),
    );
    // Packages the production install contains: the dependencies and what they depend on.
    const installed = new Set(deps);
    for (const d of deps) {
      const p = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', d, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
      };
      for (const t of Object.keys(p.dependencies ?? {})) installed.add(t);
    }
    const builtins = new Set(builtinModules);
    const missing: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, e.name);
        if (e.isDirectory()) walk(file);
        else if (/\.ts$/.test(e.name)) {
          const src = fs.readFileSync(file, 'utf8');
          for (const m of src.matchAll(
            /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^'.][^']*)'|require\('([^'.][^']*)'\)/g,
          )) {
            const spec = (m[1] ?? m[2])!;
            if (spec.startsWith('node:') || builtins.has(spec.split('/')[0]!)) continue;
            const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
            if (!installed.has(name)) missing.push(`${path.relative(root, file)}: ${name}`);
          }
        }
      }
    };
    walk(path.join(root, 'src'));
    expect(missing).toEqual([]);
  });
});
