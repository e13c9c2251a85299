/**
 * The checks on a table's -j/-g graph at COMMIT, walked iteratively (a chain 12,000 jumps deep is
 * refused with its line, not with a stack overflow):
 *
 *   - every loop is refused, reachable from a built-in chain or not (stricter than the kernel,
 *     which checks only what a base chain reaches);
 *   - from each built-in chain, jumps nest at most 15 deep, as nf_tables' NFT_JUMP_STACK_SIZE
 *     (16 levels with the built-in chain) allows: iptables-restore on this machine fails the rule
 *     that would jump a 16th time with "Too many links" (EMLINK). A chain no built-in chain
 *     reaches is not limited, as in the kernel. This also bounds the packet path's recursion.
 */
import { RulesError } from './errors.ts';

/** Levels of chains a packet can be in, the built-in chain being the first. */
export const JUMP_STACK_SIZE = 16;

export interface JumpChain {
  readonly name: string;
  /** -1 for a user-defined chain. */
  readonly hook: number;
  readonly rules: readonly { readonly jump: JumpChain | null; readonly line: number }[];
}

export function checkJumps(chains: readonly JumpChain[], origin: string): void {
  const heights = jumpHeights(chains, origin);
  for (const builtin of chains) {
    if (builtin.hook === -1 || heights.get(builtin)! < JUMP_STACK_SIZE) continue;
    // Down a longest path to the rule that jumps one level too deep.
    const path = [builtin.name];
    let chain = builtin;
    for (let level = 1; ; level++) {
      const rule = chain.rules.find((candidate) => candidate.jump !== null && heights.get(candidate.jump)! >= JUMP_STACK_SIZE - level)!;
      chain = rule.jump!;
      path.push(chain.name);
      if (level === JUMP_STACK_SIZE) {
        const reason = `this jump nests chains ${JUMP_STACK_SIZE} deep below ${builtin.name} (${chainPath(path)}): the kernel allows ${JUMP_STACK_SIZE - 1} and refuses the rule (Too many links)`;
        throw new RulesError(origin, rule.line, chain.name, reason);
      }
    }
  }
}

/**
 * Per chain, the most jumps a packet can make below it. Depth-first over -j and -g edges with an
 * explicit stack; a chain met again while still on the stack closes a loop.
 */
function jumpHeights(chains: readonly JumpChain[], origin: string): Map<JumpChain, number> {
  const heights = new Map<JumpChain, number>();
  /** The chains on the stack, by position. */
  const onStack = new Map<JumpChain, number>();
  for (const root of chains) {
    if (heights.has(root)) continue;
    const stack = [{ chain: root, next: 0, height: 0 }];
    onStack.set(root, 0);
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const rule = frame.chain.rules[frame.next++];
      if (rule === undefined) {
        stack.pop();
        onStack.delete(frame.chain);
        heights.set(frame.chain, frame.height);
        const caller = stack[stack.length - 1];
        if (caller) caller.height = Math.max(caller.height, frame.height + 1);
        continue;
      }
      const target = rule.jump;
      if (target === null) continue;
      const known = heights.get(target);
      if (known !== undefined) {
        frame.height = Math.max(frame.height, known + 1);
        continue;
      }
      const at = onStack.get(target);
      if (at !== undefined) {
        const cycle = [...stack.slice(at).map((f) => f.chain.name), target.name];
        throw new RulesError(origin, rule.line, target.name, `chain loop: ${chainPath(cycle)}`);
      }
      onStack.set(target, stack.length);
      stack.push({ chain: target, next: 0, height: 0 });
    }
  }
  return heights;
}

/** `a -> b -> c`, its middle left out when long (a loop may run through thousands of chains). */
function chainPath(names: readonly string[]): string {
  const shown = 4;
  if (names.length <= 2 * shown + 1) return names.join(' -> ');
  return [...names.slice(0, shown), `(${names.length - 2 * shown} more)`, ...names.slice(-shown)].join(' -> ');
}
