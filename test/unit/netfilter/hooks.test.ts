import { describe, expect, it } from 'vitest';
import { Hook, HookRegistry, Priority, Verdict, runChain, type HookOps, type ChainResult, type Verdict as VerdictType } from '../../../router/core/hooks.ts';
import { Packet } from '../../../router/core/packet.ts';

function op(name: string, priority: number, calls: string[], verdict: VerdictType = Verdict.ACCEPT): HookOps {
  return { hook: Hook.FORWARD, priority, name, fn: () => (calls.push(name), verdict) };
}

const packet = new Packet(Buffer.alloc(20), null);
const result = (): ChainResult => ({ verdict: Verdict.ACCEPT, stoppedAt: 0 });

describe('hook registry', () => {
  it('runs ops in priority order, lower first, whatever the registration order', () => {
    const registry = new HookRegistry();
    const calls: string[] = [];
    registry.register(op('confirm', Priority.CONNTRACK_CONFIRM, calls));
    registry.register(op('filter', Priority.FILTER, calls));
    registry.register(op('conntrack', Priority.CONNTRACK, calls));
    registry.register(op('helper', Priority.CONNTRACK_HELPER, calls));
    registry.register(op('snat', Priority.NAT_SRC, calls));
    registry.register(op('dnat', Priority.NAT_DST, calls));
    registry.register(op('defrag', Priority.CONNTRACK_DEFRAG, calls));
    registry.register(op('mangle', Priority.MANGLE, calls));
    runChain(registry.chain(Hook.FORWARD), 0, packet, Hook.FORWARD, result());
    expect(calls).toEqual(['defrag', 'conntrack', 'mangle', 'dnat', 'filter', 'snat', 'helper', 'confirm']);
  });

  it('keeps registration order among equal priorities', () => {
    const registry = new HookRegistry();
    const calls: string[] = [];
    registry.register(op('a', 0, calls));
    registry.register(op('early', -1, calls));
    registry.register(op('b', 0, calls));
    registry.register(op('c', 0, calls));
    runChain(registry.chain(Hook.FORWARD), 0, packet, Hook.FORWARD, result());
    expect(calls).toEqual(['early', 'a', 'b', 'c']);
  });

  it('unregisters at run time without touching a chain already taken by a packet in flight', () => {
    const registry = new HookRegistry();
    const calls: string[] = [];
    const first = op('first', 0, calls);
    const second = op('second', 10, calls);
    registry.register(first);
    registry.register(second);
    const inFlight = registry.chain(Hook.FORWARD);
    expect(registry.unregister(first)).toBe(true);
    expect(registry.unregister(first)).toBe(false);
    registry.register(op('third', 5, calls));
    runChain(inFlight, 0, packet, Hook.FORWARD, result());
    expect(calls).toEqual(['first', 'second']);
    calls.length = 0;
    runChain(registry.chain(Hook.FORWARD), 0, packet, Hook.FORWARD, result());
    expect(calls).toEqual(['third', 'second']);
    expect(Object.isFrozen(inFlight)).toBe(true);
  });

  it('keeps the five hooks apart', () => {
    const registry = new HookRegistry();
    const calls: string[] = [];
    registry.register({ ...op('pre', 0, calls), hook: Hook.PRE_ROUTING });
    expect(registry.chain(Hook.FORWARD)).toHaveLength(0);
    expect(registry.chain(Hook.PRE_ROUTING)).toHaveLength(1);
  });

  it('stops at DROP, STOLEN and QUEUE and reports where', () => {
    for (const verdict of [Verdict.DROP, Verdict.STOLEN, Verdict.QUEUE]) {
      const registry = new HookRegistry();
      const calls: string[] = [];
      registry.register(op('a', 0, calls));
      registry.register(op('stop', 1, calls, verdict));
      registry.register(op('never', 2, calls));
      const outcome = runChain(registry.chain(Hook.FORWARD), 0, packet, Hook.FORWARD, result());
      expect(outcome).toEqual({ verdict, stoppedAt: 1 });
      expect(calls).toEqual(['a', 'stop']);
    }
  });

  it('calls a REPEAT op again until it settles, and drops one that never does', () => {
    const registry = new HookRegistry();
    let calls = 0;
    registry.register({ hook: Hook.FORWARD, priority: 0, name: 'twice', fn: () => (++calls < 3 ? Verdict.REPEAT : Verdict.ACCEPT) });
    expect(runChain(registry.chain(Hook.FORWARD), 0, packet, Hook.FORWARD, result()).verdict).toBe(Verdict.ACCEPT);
    expect(calls).toBe(3);
    const forever = new HookRegistry();
    forever.register({ hook: Hook.FORWARD, priority: 0, name: 'forever', fn: () => Verdict.REPEAT });
    expect(runChain(forever.chain(Hook.FORWARD), 0, packet, Hook.FORWARD, result()).verdict).toBe(Verdict.DROP);
  });
});
