/**
 * A whitelisted command, resolved from one entry of `allowed-commands.json`.
 * Everything the process layer needs to spawn it; nothing about HTTP.
 */
export interface CommandSpec {
  /** The exact key of the whitelist entry (what the client URL-encodes). */
  readonly key: string;
  /** Executable: a bare name looked up on the child's fixed PATH, or a path. */
  readonly command: string;
  /** Arguments, passed as argv (never through a shell). */
  readonly args: readonly string[];
  /** Absolute working directory of the child. @default the whitelist file's folder */
  readonly cwd: string;
  /** Fixed environment set by the admin for this command (trusted, may set anything). */
  readonly env: Readonly<Record<string, string>>;
  /**
   * Names a client may set through `ENV_<NAME>` headers. `undefined`: any name not on the
   * built-in blocklist. An empty list: none. Entries may end in `*` to allow a prefix.
   */
  readonly allowedEnv: readonly string[] | undefined;
  /** Free text shown in /status and logs. */
  readonly description: string | undefined;
  /** Warm spares kept for env-free sessions; `min` unset: the global default. */
  readonly pool?: { readonly min?: number };
  /** Most children this command may run at once. @default the global maxChildren */
  readonly maxChildren?: number;
  /** `shared`: env-free sessions share a small pool of children (stateless servers). @default isolated */
  readonly mode?: 'isolated' | 'shared';
  /** How many children a shared command spreads its sessions over. @default 1 */
  readonly sharedChildren?: number;
  /** Most memory (MB, resident, the whole tree) one child may use; over it the child is stopped. @default --max-child-memory-mb */
  readonly maxMemoryMb?: number;
  /** `hibernate`: an idle session's child is stopped and started again on its next message. @default keep */
  readonly idle?: 'keep' | 'hibernate';
  /** Idle time after which a hibernating entry's child is stopped, ms. @default --hibernate-after-ms */
  readonly hibernateAfterMs?: number;
}
