/**
 * The NAT targets, SNAT, DNAT, MASQUERADE and REDIRECT: known, so that they are refused outside
 * the nat table as the kernel refuses them, but not built yet. They come as units with the NAT
 * engine; each then replaces its `create` here.
 */
import { OptionError } from '../errors.ts';
import type { TargetType } from '../extension.ts';

function pending(name: string): TargetType {
  return {
    name,
    tables: ['nat'],
    options: [],
    create: () => {
      throw new OptionError(name, `target ${name} is not supported yet (NAT targets come with the NAT engine)`);
    },
  };
}

export const snatTarget = pending('SNAT');
export const dnatTarget = pending('DNAT');
export const masqueradeTarget = pending('MASQUERADE');
export const redirectTarget = pending('REDIRECT');
