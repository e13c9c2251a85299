/** A command line the tools cannot make sense of: printed with the usage, exit code 2. */
export class UsageError extends Error {}
