/**
 * The HTML of the authorization server: the consent page (who asks, where the person is
 * sent back to, what it will reach; the credential field), the page that asks for the
 * entry's env values, and the error page. Plain HTML with labels, one form each, no
 * JavaScript, no external resources; every value shown is escaped. The pages are never
 * framed and never cached.
 */

/**
 * Headers of every page: no framing, no scripts, no caching, no referrer to other sites.
 * The referrer policy is `same-origin`, not `no-referrer`: under `no-referrer` a browser sends
 * `Origin: null` with the page's own form post, which the Origin check refuses.
 */
export function pageHeaders(): Record<string, string> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
    'Referrer-Policy': 'same-origin',
  };
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * One column of plain blocks: readable at 320 CSS pixels (terms stack above their values on a
 * narrow screen, long values wrap anywhere instead of widening the page), the system font,
 * text and borders dark enough on white, buttons large enough to tap.
 */
const STYLE = `body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a;background:#fff}
h1{font-size:1.5rem;line-height:1.25}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
@media (max-width:30rem){body{margin:1rem auto}dl{grid-template-columns:1fr;gap:0}dd{margin-bottom:.5rem}}
label{display:block;font-weight:600;margin-top:1rem}input[type=password]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box;border:1px solid #555;border-radius:4px}
.hint{color:#444}.buttons{margin-top:1.5rem;display:flex;flex-wrap:wrap;gap:1rem}button{padding:.6rem 1.5rem;font-size:1rem;min-height:2.75rem}
.warning{background:#fff4e5;border-left:4px solid #e67e22;padding:.5rem 1rem}.error{background:#fdecea;border-left:4px solid #c0392b;padding:.5rem 1rem}`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

function hiddenFields(hidden: Readonly<Record<string, string>>): string {
  return Object.entries(hidden)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n');
}

function errorBox(error: string | undefined): string {
  return error === undefined ? '' : `<p class="error" role="alert">${escapeHtml(error)}</p>\n`;
}

export function errorPage(title: string, message: string): string {
  return page(title, `<p class="error" role="alert">${escapeHtml(message)}</p>\n<p>Go back to the application and start the connection again.</p>`);
}

/** What the consent page shows about a request. */
export interface ConsentView {
  readonly clientName: string;
  readonly clientId: string;
  /** The host of a client_id that is a metadata document URL. */
  readonly clientIdHost?: string;
  /** Where the person is sent back to: scheme and host of the redirect URI. */
  readonly redirectTarget: string;
  /** True when every redirect URI of the client is on this computer (localhost). */
  readonly localhostOnly: boolean;
  readonly key: string;
  readonly resource: string;
  readonly scope: string;
  readonly hidden: Readonly<Record<string, string>>;
  readonly error?: string;
}

/** A registration's long opaque client_id, shortened: it means nothing to a person. */
const SHOWN_ID_CHARS = 16;

/**
 * How the page names the client: a metadata document by its URL (its host is checked), a
 * dynamic registration by the start of its client_id, saying that it registered itself.
 */
function clientIdText(view: ConsentView): string {
  if (view.clientIdHost !== undefined || view.clientId.length <= SHOWN_ID_CHARS * 2) return escapeHtml(view.clientId);
  return `${escapeHtml(view.clientId.slice(0, SHOWN_ID_CHARS))}… (registered itself here; its name is its own claim)`;
}

export function consentPage(view: ConsentView): string {
  const fromHost = view.clientIdHost === undefined ? '' : `<dt>Published by</dt><dd>${escapeHtml(view.clientIdHost)}</dd>\n`;
  const localhost = view.localhostOnly
    ? `<p class="warning">This application can only send you back to a program on this computer (localhost). Allow it only if you started it yourself.</p>\n`
    : '';
  return page(
    'Allow access to an MCP server?',
    `${errorBox(view.error)}<p><strong>${escapeHtml(view.clientName)}</strong> asks to use the MCP server <strong>${escapeHtml(view.key)}</strong> on this gateway in your name.</p>
<dl>
<dt>Application</dt><dd>${escapeHtml(view.clientName)}</dd>
<dt>Client ID</dt><dd>${clientIdText(view)}</dd>
${fromHost}<dt>Sends you back to</dt><dd>${escapeHtml(view.redirectTarget)}</dd>
<dt>Will reach</dt><dd>${escapeHtml(view.key)} (${escapeHtml(view.resource)})</dd>
<dt>Scope</dt><dd>${escapeHtml(view.scope)}</dd>
</dl>
${localhost}<form method="post" action="/authorize">
${hiddenFields(view.hidden)}
<label for="credential">Your gateway credential (the shared secret or your client token)</label>
<input type="password" id="credential" name="credential" autocomplete="current-password" required aria-describedby="credential-hint">
<p class="hint" id="credential-hint">The application gets its own token with your role; it never sees what you type here. An administrator token is not accepted.</p>
<div class="buttons">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</div>
</form>`,
  );
}

/** The second page, for an entry that takes env values. */
export interface EnvView {
  readonly clientName: string;
  readonly key: string;
  readonly names: readonly string[];
  readonly hidden: Readonly<Record<string, string>>;
  readonly error?: string;
}

export function envPage(view: EnvView): string {
  const fields = view.names
    .map(
      (name) =>
        `<label for="env-${escapeHtml(name)}">${escapeHtml(name)}</label>\n<input type="password" id="env-${escapeHtml(name)}" name="env_${escapeHtml(name)}" autocomplete="off">`,
    )
    .join('\n');
  return page(
    `Settings for ${view.key}`,
    `${errorBox(view.error)}<p>The MCP server <strong>${escapeHtml(view.key)}</strong> can take these values. Fill in the ones you need; leave the others empty.
They are encrypted into the access <strong>${escapeHtml(view.clientName)}</strong> receives, passed to the server as environment variables, and never shown again.</p>
<form method="post" action="/authorize">
${hiddenFields(view.hidden)}
${fields}
<div class="buttons">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</div>
</form>`,
  );
}
