/**
 * Logging from the packet path: at most `burst` lines per `intervalMs` per key, then one line
 * saying how many were suppressed. A flood of bad packets must not become a flood of log lines.
 */
export class RateLimitedLog {
  private readonly windows = new Map<string, { start: number; lines: number; suppressed: number }>();

  constructor(
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
    private readonly intervalMs = 5000,
    private readonly burst = 5,
    private readonly now: () => number = () => performance.now(),
  ) {}

  log(key: string, message: string): void {
    const now = this.now();
    let window = this.windows.get(key);
    if (!window || now - window.start >= this.intervalMs) {
      if (window?.suppressed) this.write(`vrouter: ${key}: ${window.suppressed} similar messages suppressed`);
      window = { start: now, lines: 0, suppressed: 0 };
      this.windows.set(key, window);
    }
    if (window.lines < this.burst) {
      window.lines++;
      this.write(`vrouter: ${key}: ${message}`);
    } else {
      window.suppressed++;
    }
  }
}
