/**
 * `control:` in a router or lab file: a path (`control: /run/vrouter/lab.sock`), or
 * `control: { path, group, mode }` to let a group's members use the tools without root:
 *
 *   group  a group name or gid; the socket (and a directory made for it) get that group
 *   mode   the socket's permission bits, octal as chmod takes them (`mode: 0660`, `"0660"`);
 *          default 0600, or 0660 with a group; never bits for others
 */
import { execFileSync } from 'node:child_process';
import { isScalar } from 'yaml';
import type { ConfigReader, Path } from './config.ts';
import { ALLOWED_SOCKET_MODE, DEFAULT_CONTROL_SOCKET, DEFAULT_GROUP_SOCKET_MODE, DEFAULT_SOCKET_MODE, type ControlSocketSpec } from './control-socket.ts';

const OCTAL_MODE = /^(?:0o?)?([0-7]{3,4})$/;
/** What groupadd takes (a portable name), so a name can never read as an option of getent. */
const GROUP_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/;
const MAX_GID = 0xfffffffe;

export function readControl(reader: ConfigReader, value: unknown, at: Path): ControlSocketSpec {
  if (value === undefined) return { path: DEFAULT_CONTROL_SOCKET, group: null, mode: DEFAULT_SOCKET_MODE };
  if (typeof value === 'string') return { path: reader.string(at, value), group: null, mode: DEFAULT_SOCKET_MODE };
  const raw = reader.requireMap(at, ['path', 'group', 'mode']);
  const path = raw.path === undefined ? DEFAULT_CONTROL_SOCKET : reader.string([...at, 'path'], raw.path);
  const group = raw.group === undefined ? null : readGroup(reader, [...at, 'group'], raw.group);
  const mode = raw.mode === undefined ? (group === null ? DEFAULT_SOCKET_MODE : DEFAULT_GROUP_SOCKET_MODE) : readMode(reader, [...at, 'mode'], raw.mode);
  return { path, group, mode };
}

/** The mode as written (YAML reads `0660` as the decimal 660): octal digits, as chmod takes them. */
function readMode(reader: ConfigReader, at: Path, value: unknown): number {
  const node = reader.doc.getIn(at, true);
  const written = isScalar(node) && typeof node.source === 'string' ? node.source : String(value);
  const digits = OCTAL_MODE.exec(written)?.[1];
  if (digits === undefined) reader.fail(at, value, 'must be octal permission bits such as 0600 or 0660');
  const mode = parseInt(digits, 8);
  if ((mode & ~ALLOWED_SOCKET_MODE) !== 0) {
    reader.fail(at, written, 'must not give others access (anyone on the machine could change the rules): use group: for the users who may');
  }
  return mode;
}

function readGroup(reader: ConfigReader, at: Path, value: unknown): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value > MAX_GID) reader.fail(at, value, `must be a group name or a gid from 0 to ${MAX_GID}`);
    return value;
  }
  const name = reader.string(at, value);
  if (/^\d+$/.test(name)) return readGroup(reader, at, Number(name));
  if (!GROUP_NAME.test(name)) reader.fail(at, value, 'must be a group name or a gid');
  const gid = lookUpGroup(name);
  if (gid === null) reader.fail(at, value, `no group of this name on this machine (getent group ${name} finds none)`);
  return gid;
}

/** gid of a group by name, as the system's name service has it; null when there is none. */
function lookUpGroup(name: string): number | null {
  try {
    const entry = execFileSync('getent', ['group', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const gid = Number(entry.split(':')[2]);
    return Number.isInteger(gid) ? gid : null;
  } catch {
    return null;
  }
}
