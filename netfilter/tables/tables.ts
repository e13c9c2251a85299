/**
 * The four tables and where their built-in chains run: the kernel's iptable_raw, iptable_mangle,
 * iptable_nat and iptable_filter hooks and priorities (reference section 1).
 */
import { HOOK_NAMES, Hook, Priority, type HookPoint } from '../../router/core/hooks.ts';

export const TableId = { RAW: 0, MANGLE: 1, NAT: 2, FILTER: 3 } as const;
export type TableId = (typeof TableId)[keyof typeof TableId];

export const TABLE_NAMES = ['raw', 'mangle', 'nat', 'filter'] as const;
export type TableName = (typeof TABLE_NAMES)[number];

export interface TableHook {
  readonly hook: HookPoint;
  readonly priority: number;
}

/** Built-in chains per table, in hook order (the order iptables-save prints them in). */
export const TABLE_HOOKS: readonly (readonly TableHook[])[] = [
  [
    { hook: Hook.PRE_ROUTING, priority: Priority.RAW },
    { hook: Hook.LOCAL_OUT, priority: Priority.RAW },
  ],
  [
    { hook: Hook.PRE_ROUTING, priority: Priority.MANGLE },
    { hook: Hook.LOCAL_IN, priority: Priority.MANGLE },
    { hook: Hook.FORWARD, priority: Priority.MANGLE },
    { hook: Hook.LOCAL_OUT, priority: Priority.MANGLE },
    { hook: Hook.POST_ROUTING, priority: Priority.MANGLE },
  ],
  [
    { hook: Hook.PRE_ROUTING, priority: Priority.NAT_DST },
    { hook: Hook.LOCAL_IN, priority: Priority.NAT_SRC },
    { hook: Hook.LOCAL_OUT, priority: Priority.NAT_DST },
    { hook: Hook.POST_ROUTING, priority: Priority.NAT_SRC },
  ],
  [
    { hook: Hook.LOCAL_IN, priority: Priority.FILTER },
    { hook: Hook.FORWARD, priority: Priority.FILTER },
    { hook: Hook.LOCAL_OUT, priority: Priority.FILTER },
  ],
];

/** iptables-save's order, the same from iptables-nft and iptables-legacy 1.8.9. */
export const SAVE_ORDER: readonly TableId[] = [TableId.MANGLE, TableId.RAW, TableId.FILTER, TableId.NAT];

export function tableIdOf(name: string): TableId | -1 {
  return TABLE_NAMES.indexOf(name as TableName) as TableId | -1;
}

/** The hook of built-in chain `name` in table `id`, or -1 if the table has no such chain. */
export function builtinHook(id: TableId, name: string): HookPoint | -1 {
  for (const { hook } of TABLE_HOOKS[id]!) if (HOOK_NAMES[hook] === name) return hook;
  return -1;
}

export function isHookName(name: string): boolean {
  return (HOOK_NAMES as readonly string[]).includes(name);
}

/**
 * Whether the kernel hands the hook an input device: all but OUTPUT. POSTROUTING gets one too,
 * the device a forwarded packet came in on (ip_output passes skb->dev as indev): a LOG line there
 * shows IN=lan0, checked on Linux 6.18.
 */
export function hookHasInput(hook: HookPoint): boolean {
  return hook !== Hook.LOCAL_OUT;
}

/** Likewise for the output device: none before routing (PREROUTING, INPUT). */
export function hookHasOutput(hook: HookPoint): boolean {
  return hook === Hook.FORWARD || hook === Hook.LOCAL_OUT || hook === Hook.POST_ROUTING;
}
