// Incremental Server-Sent Events parser: feed it text chunks, get (event, data) calls.
// Handles events split across chunks, multi-line data, comments and CRLF line ends.
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = '';
    this.scanFrom = 0;
  }

  push(chunk) {
    if (chunk.includes('\r')) chunk = chunk.replace(/\r\n?/g, '\n');
    this.buf += chunk;
    for (;;) {
      const end = this.buf.indexOf('\n\n', this.scanFrom);
      if (end === -1) {
        this.scanFrom = Math.max(0, this.buf.length - 1);
        return;
      }
      const block = this.buf.slice(0, end);
      this.buf = this.buf.slice(end + 2);
      this.scanFrom = 0;
      this.dispatch(block);
    }
  }

  dispatch(block) {
    let event = 'message';
    let data;
    let start = 0;
    while (start <= block.length) {
      let nl = block.indexOf('\n', start);
      if (nl === -1) nl = block.length;
      const line = block.slice(start, nl);
      start = nl + 1;
      if (line.length === 0 || line.charCodeAt(0) === 58 /* ':' */) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data = data === undefined ? value : `${data}\n${value}`;
    }
    if (data !== undefined) this.onEvent(event, data);
  }
}
