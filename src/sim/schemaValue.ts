/**
 * JSON Schema in, a value valid against it out: how the simulator keeps its promise that a request
 * with a schema (json_schema, or json_object with a schema) gets schema-valid JSON even when it
 * does not recognise the prompt. Covers what structured-output schemas use: objects (properties,
 * required, additionalProperties), arrays (items, prefixItems, minItems/maxItems), strings (enum,
 * const, minLength/maxLength, common formats), numbers and integers (minimum/maximum, exclusive
 * bounds, multipleOf), booleans, null, anyOf/oneOf/allOf, type lists and local $refs. `pattern` is
 * not generated for (the value is then a plain word). Deterministic for the `rand` it is given.
 */
type Schema = Record<string, unknown>;
type Rand = () => number;

const WORDS = [
  'simulated',
  'value',
  'sample',
  'offline',
  'answer',
  'item',
  'example',
  'placeholder',
  'alpha',
  'beta',
  'gamma',
  'delta',
];
const MAX_DEPTH = 8;

const isSchema = (v: unknown): v is Schema => !!v && typeof v === 'object' && !Array.isArray(v);

function resolveRef(schema: Schema, root: Schema): Schema {
  let s = schema;
  for (let i = 0; i < 10 && typeof s.$ref === 'string'; i++) {
    const ref = s.$ref as string;
    if (!ref.startsWith('#')) return {};
    let node: unknown = root;
    for (const part of ref.slice(1).split('/').filter(Boolean)) {
      const key = decodeURIComponent(part.replace(/~1/g, '/').replace(/~0/g, '~'));
      node = isSchema(node) ? node[key] : undefined;
    }
    s = isSchema(node) ? node : {};
  }
  return s;
}

function typeOf(schema: Schema): string | undefined {
  const t = schema.type;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return (t.find((x) => x !== 'null') ?? t[0]) as string | undefined;
  if (isSchema(schema.properties)) return 'object';
  if (schema.items !== undefined || schema.prefixItems !== undefined) return 'array';
  return undefined;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function words(rand: Rand, n: number): string {
  return Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]!).join(' ');
}

function stringFor(schema: Schema, rand: Rand): string {
  const format = schema.format;
  let s: string;
  if (format === 'date-time') s = '2024-01-01T00:00:00Z';
  else if (format === 'date') s = '2024-01-01';
  else if (format === 'time') s = '00:00:00';
  else if (format === 'email') s = 'sim@example.com';
  else if (format === 'uri' || format === 'url') s = 'https://example.com/sim';
  else if (format === 'uuid') s = '00000000-0000-4000-8000-000000000000';
  else s = words(rand, 1 + Math.floor(rand() * 4));
  const min = num(schema.minLength) ?? 0;
  const max = num(schema.maxLength);
  while (s.length < min) s += ` ${words(rand, 1)}`;
  if (max !== undefined && s.length > max) s = s.slice(0, max);
  return s;
}

function numberFor(schema: Schema, rand: Rand, integer: boolean): number {
  const exMin = num(schema.exclusiveMinimum);
  const exMax = num(schema.exclusiveMaximum);
  const step = num(schema.multipleOf) ?? (integer ? 1 : undefined);
  let lo = num(schema.minimum) ?? exMin;
  let hi = num(schema.maximum) ?? exMax;
  if (lo === undefined && hi === undefined) [lo, hi] = [0, 10];
  else if (lo === undefined) lo = hi! - 10;
  else if (hi === undefined) hi = lo + 10;
  if (step) {
    // Multiples of the step strictly inside exclusive bounds, inclusive otherwise.
    let first = Math.ceil(lo! / step);
    let last = Math.floor(hi! / step);
    if (exMin !== undefined && first * step <= exMin) first++;
    if (exMax !== undefined && last * step >= exMax) last--;
    if (last < first) return first * step;
    return (first + Math.floor(rand() * (last - first + 1))) * step;
  }
  const v = lo! + rand() * (hi! - lo!);
  const rounded = Math.round(v * 100) / 100;
  if ((exMin !== undefined && rounded <= exMin) || (exMax !== undefined && rounded >= exMax))
    return (lo! + hi!) / 2;
  return Math.min(hi!, Math.max(lo!, rounded));
}

function valueAt(schema: Schema, root: Schema, rand: Rand, depth: number): unknown {
  const s = resolveRef(schema, root);
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[Math.floor(rand() * s.enum.length)];
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = Array.isArray(s[key]) ? (s[key] as unknown[]).filter(isSchema) : [];
    if (options.length) {
      // Prefer a branch that is not plain null (nullable fields still get a value).
      const real = options.filter((o) => resolveRef(o, root).type !== 'null');
      const pool = real.length ? real : options;
      return valueAt({ ...without(s, key), ...pool[Math.floor(rand() * pool.length)]! }, root, rand, depth);
    }
  }
  if (Array.isArray(s.allOf) && s.allOf.length) {
    const merged = (s.allOf as unknown[])
      .filter(isSchema)
      .reduce<Schema>((acc, part) => mergeSchemas(acc, resolveRef(part, root)), without(s, 'allOf'));
    return valueAt(merged, root, rand, depth);
  }
  switch (typeOf(s)) {
    case 'object':
      return objectFor(s, root, rand, depth);
    case 'array':
      return arrayFor(s, root, rand, depth);
    case 'integer':
      return numberFor(s, rand, true);
    case 'number':
      return numberFor(s, rand, false);
    case 'boolean':
      return rand() < 0.5;
    case 'null':
      return null;
    default:
      return stringFor(s, rand);
  }
}

function without(s: Schema, key: string): Schema {
  const { [key]: _dropped, ...rest } = s;
  return rest;
}

function mergeSchemas(a: Schema, b: Schema): Schema {
  const out: Schema = { ...a, ...b };
  if (isSchema(a.properties) && isSchema(b.properties)) out.properties = { ...a.properties, ...b.properties };
  if (Array.isArray(a.required) && Array.isArray(b.required)) out.required = [...a.required, ...b.required];
  return out;
}

function objectFor(s: Schema, root: Schema, rand: Rand, depth: number): Record<string, unknown> {
  const props = isSchema(s.properties) ? s.properties : {};
  const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
  const out: Record<string, unknown> = {};
  for (const [name, sub] of Object.entries(props)) {
    // Past the depth limit only what is required is filled in, so recursive schemas end.
    if (depth >= MAX_DEPTH && !required.has(name)) continue;
    out[name] = valueAt(isSchema(sub) ? sub : {}, root, rand, depth + 1);
  }
  // Required names without a property schema (allowed by JSON Schema) still get a value.
  for (const name of required) if (!(name in out)) out[name] = words(rand, 1);
  const min = num(s.minProperties) ?? 0;
  const extra = isSchema(s.additionalProperties) ? s.additionalProperties : {};
  for (let i = 0; Object.keys(out).length < min && s.additionalProperties !== false; i++)
    out[`extra_${i}`] = valueAt(extra, root, rand, depth + 1);
  return out;
}

function arrayFor(s: Schema, root: Schema, rand: Rand, depth: number): unknown[] {
  const prefix = Array.isArray(s.prefixItems) ? (s.prefixItems as unknown[]) : [];
  const min = Math.max(num(s.minItems) ?? 0, s.items === false ? prefix.length : 0);
  const max = s.items === false ? prefix.length : (num(s.maxItems) ?? Math.max(min, 3));
  const wanted = depth >= MAX_DEPTH ? min : Math.max(min, Math.min(max, 1 + Math.floor(rand() * 3)));
  const items = isSchema(s.items) ? s.items : {};
  const out: unknown[] = [];
  for (let i = 0; i < wanted; i++) {
    const at = prefix[i];
    const sub: Schema = isSchema(at) ? at : items;
    let v = valueAt(sub, root, rand, depth + 1);
    // uniqueItems: vary a scalar until it is new (bounded; enums may have too few values).
    for (let t = 0; s.uniqueItems === true && t < 20 && out.some((o) => same(o, v)); t++)
      v = valueAt(sub, root, rand, depth + 1);
    out.push(v);
  }
  return out;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** A value valid against `schema` (within the subset above), drawn with `rand`. */
export function valueForSchema(schema: Record<string, unknown>, rand: Rand): unknown {
  return valueAt(schema, schema, rand, 0);
}

/**
 * Whether `value` satisfies `schema`, within the same subset (used to check that a recognised
 * task's canned reply fits the schema a client sent before the simulator sends it).
 */
export function fitsSchema(value: unknown, schema: Record<string, unknown>): boolean {
  return fits(value, schema, schema, 0);
}

function fits(value: unknown, schema: Schema, root: Schema, depth: number): boolean {
  if (depth > 32) return true;
  const s = resolveRef(schema, root);
  if ('const' in s && !same(s.const, value)) return false;
  if (Array.isArray(s.enum) && !s.enum.some((e) => same(e, value))) return false;
  if (
    Array.isArray(s.anyOf) &&
    !(s.anyOf as unknown[]).some((o) => isSchema(o) && fits(value, o, root, depth + 1))
  )
    return false;
  if (
    Array.isArray(s.oneOf) &&
    !(s.oneOf as unknown[]).some((o) => isSchema(o) && fits(value, o, root, depth + 1))
  )
    return false;
  if (
    Array.isArray(s.allOf) &&
    !(s.allOf as unknown[]).every((o) => !isSchema(o) || fits(value, o, root, depth + 1))
  )
    return false;
  const types =
    typeof s.type === 'string' ? [s.type] : Array.isArray(s.type) ? (s.type as string[]) : undefined;
  if (types && !types.some((t) => hasType(value, t))) return false;
  if (typeof value === 'string') {
    if (num(s.minLength) !== undefined && value.length < num(s.minLength)!) return false;
    if (num(s.maxLength) !== undefined && value.length > num(s.maxLength)!) return false;
  }
  if (typeof value === 'number') {
    if (num(s.minimum) !== undefined && value < num(s.minimum)!) return false;
    if (num(s.maximum) !== undefined && value > num(s.maximum)!) return false;
    if (num(s.exclusiveMinimum) !== undefined && value <= num(s.exclusiveMinimum)!) return false;
    if (num(s.exclusiveMaximum) !== undefined && value >= num(s.exclusiveMaximum)!) return false;
  }
  if (Array.isArray(value)) {
    if (num(s.minItems) !== undefined && value.length < num(s.minItems)!) return false;
    if (num(s.maxItems) !== undefined && value.length > num(s.maxItems)!) return false;
    const items = isSchema(s.items) ? s.items : undefined;
    if (items && !value.every((v) => fits(v, items, root, depth + 1))) return false;
  }
  if (isSchema(value)) {
    const props = isSchema(s.properties) ? s.properties : {};
    if (Array.isArray(s.required) && !(s.required as string[]).every((k) => k in value)) return false;
    for (const [k, v] of Object.entries(value)) {
      const sub = props[k];
      if (isSchema(sub)) {
        if (!fits(v, sub, root, depth + 1)) return false;
      } else if (s.additionalProperties === false) return false;
    }
  }
  return true;
}

function hasType(value: unknown, t: string): boolean {
  switch (t) {
    case 'object':
      return isSchema(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    case 'null':
      return value === null;
    default:
      return true;
  }
}
