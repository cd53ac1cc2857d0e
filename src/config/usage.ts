/**
 * The `--help` text. Every flag of SOURCES (settings.ts) appears here with its variable and
 * default (test/unit/config/settings.test.ts checks it); docs/configuration.md says more.
 */
import { LOG_LEVELS } from '../logging/logger.js';

export const USAGE = `Usage: mcp-warden [options]
       mcp-warden audit verify FILE
       mcp-warden oauth grants|revoke ... (mcp-warden oauth --help)
       mcp-warden commands list|add|remove|check|url ...   (mcp-warden commands help)
Options (each also read from the environment variable in brackets; the flag wins):
  --host H                     interface to listen on (HOST, default 127.0.0.1)
  --port P                     port, 0 = any free one (PORT, default 8000)
  --commands FILE              the whitelist (WARDEN_COMMANDS, default allowed-commands.json)
  --commands-poll-ms N         how often the whitelist is checked for changes
                               (WARDEN_COMMANDS_POLL_MS, default 1000)
  --on-remove M                live sessions of a removed entry: finish|end
                               (WARDEN_ON_REMOVE, default finish)
  --log-level L                ${LOG_LEVELS.join('|')} (LOG_LEVEL, default info)
  --body-limit N               largest request body, e.g. 4mb (WARDEN_BODY_LIMIT, default 4mb)
  --allowed-hosts LIST         comma-separated Host allowlist (WARDEN_ALLOWED_HOSTS)
  --allowed-origins LIST       comma-separated Origin allowlist, * for any (WARDEN_ALLOWED_ORIGINS)
  --max-line N                 longest stdout line from a child (WARDEN_MAX_LINE, default 16mb)
  --keepalive-ms N             SSE keep-alive interval (WARDEN_KEEPALIVE_MS, default 15000)
  --json-reply-window-ms N     answer a POST as one JSON body if its reply comes this soon, 0 = always a stream
                               (WARDEN_JSON_REPLY_WINDOW_MS, default 250)
  --shutdown-grace-ms N        shutdown deadline (WARDEN_SHUTDOWN_GRACE_MS, default 10000)
  --initialize-timeout-ms N    a server's time to answer initialize
                               (WARDEN_INITIALIZE_TIMEOUT_MS, default 30000)
  --request-timeout-ms N       a client's time to send a whole request
                               (WARDEN_REQUEST_TIMEOUT_MS, default 60000)
  --max-connections N          connections at once
                               (WARDEN_MAX_CONNECTIONS, default from the open-files limit)
  --max-env-variants N         2026-07-28 conversations per caller and key with different ENV_* values
                               (WARDEN_MAX_ENV_VARIANTS, default 4)
  --input-timeout-ms N         how long a 2026-07-28 request that asked the client for input waits
                               for its retry (WARDEN_INPUT_TIMEOUT_MS, default 300000)
  --pool-min N                 warm spares per command (WARDEN_POOL_MIN, default 1)
  --spare-ttl-ms N             replace spares older than this (WARDEN_SPARE_TTL_MS, default 600000)
  --era-probe-ms N             wait for a server's answer to server/discover, 0 = no probe (all legacy)
                               (WARDEN_ERA_PROBE_MS, default 2000)
  --spawn-concurrency N        spawns at once (WARDEN_SPAWN_CONCURRENCY, default 4)
  --max-children N             live children in all (WARDEN_MAX_CHILDREN, default 64)
  --max-sessions-per-client N  sessions per client at once
                               (WARDEN_MAX_SESSIONS_PER_CLIENT, default 16)
  --evict-idle-ms N            at that cap, close the client's least recently used session idle this long
                               (WARDEN_EVICT_IDLE_MS, default 300000)
  --memory-sample-ms N         read every child tree's memory this often
                               (WARDEN_MEMORY_SAMPLE_MS, default 5000)
  --memory-budget-mb N         memory for the gateway and its children
                               (WARDEN_MEMORY_BUDGET_MB, default the cgroup limit, else total memory)
  --memory-reserve-mb N        part of the budget kept free of children
                               (WARDEN_MEMORY_RESERVE_MB, default 160)
  --max-child-memory-mb N      stop a child tree over this, 0 = no limit
                               (WARDEN_MAX_CHILD_MEMORY_MB, default 0)
  --hibernate-after-ms N       idle time before an "idle": "hibernate" entry's child is stopped
                               (WARDEN_HIBERNATE_AFTER_MS, default 60000)
  --idle-timeout-ms N          close quiet sessions, 0 = never
                               (WARDEN_IDLE_TIMEOUT_MS, default 1800000)
  --max-session-ms N           longest session, 0 = none (WARDEN_MAX_SESSION_MS, default 0)
  --startup-window-ms N        an exit this soon is a failed start
                               (WARDEN_STARTUP_WINDOW_MS, default 100)
  --start-attempts N           tries before 502 (WARDEN_START_ATTEMPTS, default 3)
  --circuit-cooldown-ms N      refuse a failing command this long
                               (WARDEN_CIRCUIT_COOLDOWN_MS, default 5000)
  --max-client-backlog N       drop a session whose client fell this far behind
                               (WARDEN_MAX_CLIENT_BACKLOG, default 16mb)
  --max-child-queue N          503 when a child's stdin queue is over this
                               (WARDEN_MAX_CHILD_QUEUE, default 4mb)
  --trusted-proxy LIST         fly and/or CIDRs whose forwarded client address is used
                               (WARDEN_TRUSTED_PROXY, default fly when FLY_APP_NAME is set)
  --env-mode M                 allowlist: entries without allowedEnv take no ENV_*
                               (WARDEN_ENV_MODE, default blocklist)
  --policy FILE                tool policy, hot-reloaded (WARDEN_POLICY)
  --policy-poll-ms N           how often the policy file is checked
                               (WARDEN_POLICY_POLL_MS, default 1000)
  --clients FILE               client tokens and roles (WARDEN_CLIENTS)
  --default-role R             role of the shared secret (WARDEN_DEFAULT_ROLE, default "default")
  --audit-file FILE            hash-chained audit trail (WARDEN_AUDIT_FILE)
  --audit-stderr B             also write audit lines to stderr, true|false
                               (WARDEN_AUDIT_STDERR, default false)
  --http-rate N                requests per client per minute, 0 = off
                               (WARDEN_HTTP_RATE, default 1200)
  --auth-failures N            failed logins per address per 15 min
                               (WARDEN_AUTH_FAILURES, default 20)
  --metrics-port P             Prometheus /metrics without auth on this port (WARDEN_METRICS_PORT)
  --redis-prefix P             prefix of the Redis keys (WARDEN_REDIS_PREFIX, default warden)
  --public-url URL             the gateway's external origin, e.g. https://app.fly.dev (WARDEN_PUBLIC_URL,
                               default https://<app>.fly.dev on Fly.io)
  --oauth-token-ttl-ms N       lifetime of an OAuth access token
                               (WARDEN_OAUTH_TOKEN_TTL_MS, default 600000)
  --oauth-allow-loopback-metadata B  accept client metadata documents on loopback addresses, for tests
                               (WARDEN_OAUTH_ALLOW_LOOPBACK_METADATA, default false)
  --oauth-register-rate N      OAuth client registrations per address per hour
                               (WARDEN_OAUTH_REGISTER_RATE, default 60)
  --oauth-issuer URL           accept JWT access tokens of this external identity provider (its exact iss)
                               instead of running the built-in authorization server (WARDEN_OAUTH_ISSUER)
  --oauth-jwks-url URL         the provider's keys; unset: the jwks_uri of its metadata, fetched at start
                               (WARDEN_OAUTH_JWKS_URL)
  --oauth-audience LIST        audiences accepted on every endpoint besides the endpoint's own URL
                               (WARDEN_OAUTH_AUDIENCE)
  --oauth-role-claim NAME      the token claim naming the caller's role, e.g. groups or roles
                               (WARDEN_OAUTH_ROLE_CLAIM, default: every token has --default-role)
  --oauth-role-map MAP         claimValue=role,... (the first listed that the token carries wins)
                               (WARDEN_OAUTH_ROLE_MAP, default: the claim's value is the role)
  --oauth-required-scope S     the scope a token must carry, empty or none = no check
                               (WARDEN_OAUTH_REQUIRED_SCOPE, default mcp)
  --oauth-allow-loopback-issuer B  accept an http issuer and JWKS on a loopback host, for tests
                               (WARDEN_OAUTH_ALLOW_LOOPBACK_ISSUER, default false)
  -h, --help                   print this text and exit
  -v, --version                print the version and exit
Environment only (secrets never go in flags: argv is visible to other users):
  WARDEN_SECRET          the shared bearer secret, at least 8 characters; generated and printed if unset
  WARDEN_ADMIN_TOKEN     opens /status details and /metrics, at least 16 characters
  WARDEN_AUDIT_HMAC_KEY  keys the audit chain with HMAC-SHA256, at least 16 characters
  WARDEN_OAUTH_KEY       turns the built-in OAuth authorization server on, at least 32 characters
                         (not with --oauth-issuer)
  WARDEN_OAUTH_KEY_PREVIOUS  the key before a rotation: still accepted, never used to seal
  REDIS_URL              shares rate limits, sessions per client, the whitelist, and OAuth refresh
                         tokens and revocations between instances (redis://...)
  FLY_APP_NAME           set by Fly.io: WARDEN_SECRET is required, --trusted-proxy defaults to fly,
                         --allowed-hosts to <app>.fly.dev, --public-url to https://<app>.fly.dev,
                         WARDEN_OAUTH_KEY needs REDIS_URL; the machines are listed at vms.<app>.internal
  FLY_MACHINE_ID         set by Fly.io: session ids name their machine, and requests are routed to it
                         with fly-replay (docs/deploy.md)
Every flag and variable: docs/configuration.md`;
