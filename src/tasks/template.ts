/**
 * Prompt templates with named slots: `{{name}}`. Rendering fails loudly on a missing slot, and the
 * same template can be matched back against a rendered prompt (the simulator reads its requests
 * this way, so prompts and simulator can never drift apart).
 */
export type Slots = Record<string, string>;

const SLOT = /\{\{(\w+)\}\}/g;

export function slotNames(template: string): string[] {
  return [...template.matchAll(SLOT)].map((m) => m[1]!);
}

export function render(template: string, slots: Slots): string {
  return template.replace(SLOT, (_, name: string) => {
    const value = slots[name];
    if (value === undefined) throw new Error(`prompt template slot "${name}" has no value`);
    return value;
  });
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Inverse of render: the slot values of `rendered`, or undefined when it was not made from `template`. */
export function match(template: string, rendered: string): Slots | undefined {
  const names: string[] = [];
  let pattern = '';
  let last = 0;
  for (const m of template.matchAll(SLOT)) {
    pattern += escapeRegex(template.slice(last, m.index));
    pattern += '([\\s\\S]*?)';
    names.push(m[1]!);
    last = m.index! + m[0].length;
  }
  pattern += escapeRegex(template.slice(last));
  const found = new RegExp(`^${pattern}$`).exec(rendered);
  if (!found) return undefined;
  return Object.fromEntries(names.map((n, i) => [n, found[i + 1]!]));
}
