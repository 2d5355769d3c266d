// A strict reader of the Prometheus text format (0.0.4) for tests: rejects what a scraper would, returns the samples.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s: string, line: string): number {
  if (s === 'NaN') return NaN;
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (!/^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/.test(s)) throw new Error(`bad value "${s}" in: ${line}`);
  return Number(s);
}

/** Parses `{a="b",c="d"}` starting at `i`; returns the labels and the index after `}`. */
function parseLabels(line: string, i: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  i++; // '{'
  while (true) {
    if (line[i] === '}') return { labels, end: i + 1 };
    const eq = line.indexOf('=', i);
    if (eq < 0) throw new Error(`label without "=" in: ${line}`);
    const name = line.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`bad label name "${name}" in: ${line}`);
    if (name in labels) throw new Error(`label ${name} given twice in: ${line}`);
    if (line[eq + 1] !== '"') throw new Error(`label value not quoted in: ${line}`);
    let j = eq + 2;
    let v = '';
    for (;;) {
      const ch = line[j];
      if (ch === undefined) throw new Error(`unterminated label value in: ${line}`);
      if (ch === '"') break;
      if (ch === '\\') {
        const n = line[j + 1];
        if (n === '\\') v += '\\';
        else if (n === '"') v += '"';
        else if (n === 'n') v += '\n';
        else throw new Error(`bad escape \\${n} in: ${line}`);
        j += 2;
        continue;
      }
      v += ch;
      j++;
    }
    labels[name] = v;
    i = j + 1;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error(`expected , or } after a label in: ${line}`);
  }
}

/**
 * Parses an exposition, throwing on anything malformed: bad names, escapes or values, a sample
 * without a TYPE, a family declared twice or split, duplicate series, negative counters.
 */
export function parseExposition(text: string): Sample[] {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const closed = new Set<string>();
  const series = new Set<string>();
  const samples: Sample[] = [];
  let current: string | null = null;
  const open = (name: string) => {
    if (current !== name) {
      if (current) closed.add(current);
      if (closed.has(name)) throw new Error(`family ${name} is split`);
      current = name;
    }
  };
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // a plain comment
      const [, kind, name, rest] = m;
      if (!METRIC.test(name!)) throw new Error(`bad metric name in: ${line}`);
      open(name!);
      if (kind === 'HELP') {
        if (helps.has(name!)) throw new Error(`HELP for ${name} twice`);
        if (/\\[^\\n]/.test(rest!.replace(/\\\\/g, ''))) throw new Error(`bad escape in HELP: ${line}`);
        helps.add(name!);
      } else {
        if (types.has(name!)) throw new Error(`TYPE for ${name} twice`);
        if (!TYPES.has(rest!)) throw new Error(`unknown type in: ${line}`);
        types.set(name!, rest!);
      }
      continue;
    }
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nm) throw new Error(`bad sample line: ${line}`);
    const name = nm[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i));
    if (line[i] !== ' ') throw new Error(`expected a space before the value in: ${line}`);
    const parts = line.slice(i + 1).split(' ');
    if (parts.length > 2 || (parts.length === 2 && !/^-?\d+$/.test(parts[1]!))) throw new Error(`bad value/timestamp in: ${line}`);
    const value = parseValue(parts[0]!, line);
    const type = types.get(name);
    if (!type) throw new Error(`sample of ${name} with no TYPE before it`);
    open(name);
    if (type === 'counter' && !(value >= 0)) throw new Error(`negative or NaN counter in: ${line}`);
    const id = name + JSON.stringify(Object.entries(labels).sort());
    if (series.has(id)) throw new Error(`duplicate series: ${line}`);
    series.add(id);
    samples.push({ name, labels, value });
  }
  return samples;
}

/** Throws unless `text` is a valid exposition. */
export function checkExposition(text: string): void {
  parseExposition(text);
}
