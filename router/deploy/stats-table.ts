/**
 * `vrouter stats` as a person reads it: one section per group, names left, figures right, zero
 * drop reasons left out (as the JSON leaves them out); `-o json` prints the object itself.
 */
type Figures = Record<string, number>;

export interface StatsReply {
  counters: Figures;
  drops: Figures;
  hookDrops?: Figures;
  interfaces?: Record<string, Figures>;
  conntrack?: Figures;
  defrag?: Figures;
  helpers?: Record<string, Figures>;
}

const INTERFACE_COLUMNS = ['rx-packets', 'rx-bytes', 'rx-dropped', 'tx-packets', 'tx-bytes', 'tx-errors'];

function section(title: string, figures: Figures | undefined, out: string[]): void {
  const entries = Object.entries(figures ?? {});
  if (entries.length === 0) return;
  const width = Math.max(...entries.map(([name]) => name.length));
  out.push(`${title}:`);
  for (const [name, value] of entries) out.push(`  ${name.padEnd(width)}  ${String(value).padStart(10)}`);
}

export function formatStatsTable(stats: StatsReply): string {
  const out: string[] = [];
  section('packets', stats.counters, out);
  section('drops by reason', stats.drops, out);
  section('drops by rule or hook op', stats.hookDrops, out);
  const interfaces = Object.entries(stats.interfaces ?? {});
  if (interfaces.length) {
    const width = Math.max(9, ...interfaces.map(([name]) => name.length));
    out.push('interfaces:');
    out.push(`  ${'interface'.padEnd(width)}${INTERFACE_COLUMNS.map((c) => c.padStart(12)).join('')}`);
    for (const [name, figures] of interfaces) out.push(`  ${name.padEnd(width)}${INTERFACE_COLUMNS.map((c) => String(figures[c] ?? 0).padStart(12)).join('')}`);
  }
  section('conntrack', stats.conntrack, out);
  section('defrag', stats.defrag, out);
  for (const [helper, figures] of Object.entries(stats.helpers ?? {})) section(`helper ${helper}`, figures, out);
  return `${out.join('\n')}\n`;
}
