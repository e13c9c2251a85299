#!/usr/bin/env node
// The `vrouter` command: the project is TypeScript run through tsx, resolved from this package.
import { register } from 'tsx/esm/api';

register();
await import('../deploy/cli.ts');
