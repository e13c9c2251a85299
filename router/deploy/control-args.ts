/**
 * The arguments of a control request, checked before any handler runs. A request line is data
 * from whoever can reach the socket: each command declares its arguments as checks, the server
 * applies them, and a handler only ever sees values of the declared types and ranges. A refusal
 * names the argument and the value; unknown arguments are refused, not ignored.
 */

export class ControlArgumentError extends Error {
  readonly code = 'EVROUTERARGS';
}

/** Checks one value (`undefined` when the argument is absent) and returns it typed. */
export type ArgCheck<T> = (value: unknown, name: string) => T;
export type ArgSpec = Readonly<Record<string, ArgCheck<unknown>>>;
export type ArgsOf<S extends ArgSpec> = { [K in keyof S]: ReturnType<S[K]> };

const SHOWN_VALUE_LENGTH = 60;

function shown(value: unknown): string {
  const text = typeof value === 'number' && !Number.isFinite(value) ? String(value) : JSON.stringify(value);
  return text.length > SHOWN_VALUE_LENGTH ? `${text.slice(0, SHOWN_VALUE_LENGTH)}...` : text;
}

function refuse(name: string, value: unknown, reason: string): never {
  throw new ControlArgumentError(value === undefined ? `${name}: is required (${reason})` : `${name}: ${reason} (got ${shown(value)})`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function optional<T>(check: ArgCheck<T>): ArgCheck<T | undefined> {
  return (value, name) => (value === undefined ? undefined : check(value, name));
}

export const booleanArg: ArgCheck<boolean> = (value, name) => (typeof value === 'boolean' ? value : refuse(name, value, 'must be true or false'));

export const stringArg: ArgCheck<string> = (value, name) => (typeof value === 'string' ? value : refuse(name, value, 'must be a string'));

export function integerArg(min: number, max: number): ArgCheck<number> {
  return (value, name) =>
    typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max ? value : refuse(name, value, `must be a whole number from ${min} to ${max}`);
}

export function numberArg(min: number, max: number): ArgCheck<number> {
  return (value, name) =>
    typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max ? value : refuse(name, value, `must be a number from ${min} to ${max}`);
}

export function oneOfArg<T extends string>(values: readonly T[]): ArgCheck<T> {
  return (value, name) => (values.includes(value as T) ? (value as T) : refuse(name, value, `must be one of ${values.join(', ')}`));
}

export function listArg<T>(item: ArgCheck<T>, maxItems: number): ArgCheck<T[]> {
  return (value, name) => {
    if (!Array.isArray(value) || value.length > maxItems) refuse(name, value, `must be a list of at most ${maxItems}`);
    return value.map((element, i) => item(element, `${name}[${i}]`));
  };
}

/** A nested object: its keys checked as a request's arguments are; absent keys stay absent. */
export function recordArg<S extends ArgSpec>(spec: S): ArgCheck<ArgsOf<S>> {
  return (value, name) => checkArgs(spec, value, name);
}

/** The object `name` (`undefined`: empty), every key known and every value checked. */
export function checkArgs<S extends ArgSpec>(spec: S, value: unknown, name: string): ArgsOf<S> {
  const object = value === undefined ? {} : value;
  if (!isRecord(object)) refuse(name, value, 'must be an object');
  const known = Object.keys(spec);
  for (const key of Object.keys(object)) {
    if (!Object.hasOwn(spec, key)) refuse(`${name}.${key}`, object[key], known.length ? `unknown argument (known: ${known.join(', ')})` : 'unknown argument (this command takes none)');
  }
  const checked: Record<string, unknown> = {};
  for (const key of known) {
    const result = spec[key]!(object[key], `${name}.${key}`);
    if (result !== undefined) checked[key] = result;
  }
  return checked as ArgsOf<S>;
}
