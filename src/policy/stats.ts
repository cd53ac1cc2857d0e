/** Allowed/denied tool counts per command and role, as last listed (for /status). */
export interface ListedCounts {
  readonly allowed: number;
  readonly denied: number;
  readonly at: string;
}

export class PolicyStats {
  private readonly byCommand = new Map<string, Map<string, ListedCounts>>();

  listed(commandKey: string, role: string, allowed: number, denied: number): void {
    let roles = this.byCommand.get(commandKey);
    if (!roles) {
      roles = new Map();
      this.byCommand.set(commandKey, roles);
    }
    roles.set(role, { allowed, denied, at: new Date().toISOString() });
  }

  forCommand(commandKey: string): Record<string, ListedCounts> {
    return Object.fromEntries(this.byCommand.get(commandKey) ?? []);
  }
}
