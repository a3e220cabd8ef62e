// The JavaScript engine behind `POST /v1/executions`.
//
// A Tenantry component like any plugin (`tenantry:plugin@0.2.0`), with one action,
// `run`: its input is `{code, input, max_log_lines, max_log_bytes,
// max_output_bytes}`; it compiles `code` as the body of an async function of
// `(callTool, input, console)`, awaits it, and returns `{ok: true, value, logs}` or `{ok: false, error: {code, message,
// line?, column?}, logs}`. The server runs it in a fresh instance per execution
// under the org's limits, so nothing a script does (prototype pollution included)
// outlives it. Its only way out is `callTool`, which is the host's `tools.call`:
// the server decides there whether the caller may call that tool.
//
// Built with componentize-js (SpiderMonkey, its heap snapshotted at build time)
// against `../wit` (no wasi:http import). QuickJS through componentize-qjs was
// tried first (1.6 MB, faster to start), but on a host without the component
// model's async ABI its runtime does not run promise jobs, so `await` cannot work
// (docs/executions.md).
import { call as hostCall } from 'tenantry:plugin/tools@0.2.0';

const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;

// The engine's own networking globals: inert without a wasi:http import, removed so
// a script does not mistake them for a way out.
for (const name of ['fetch', 'Request', 'Response', 'Headers', 'FormData']) {
  delete globalThis[name];
}

// Captured before any script runs: a script may replace the globals it sees, but
// the engine keeps using these.
const stringify = JSON.stringify;
const parse = JSON.parse;
const StringOf = String;

// Where in the compiled function an error happened (SpiderMonkey's
// `lineNumber`/`columnNumber`).
function rawPosition(e) {
  if (e && typeof e.lineNumber === 'number') {
    return { line: e.lineNumber, column: e.columnNumber };
  }
  return {};
}

// The lines the Function constructor puts before the script's first line,
// measured once (at build time, in the snapshot).
const HEADER_LINES = (() => {
  try {
    new Function('a', 'b', 'c', 'throw new Error("probe")')();
  } catch (e) {
    const { line } = rawPosition(e);
    if (line > 0) return line - 1;
  }
  return 0;
})();

class ScriptError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// The host's refusals, by the WIT error's tag, and the outcome codes the server
// puts in front of a `failed` message ("TIMEOUT: …").
const TAG_CODES = {
  'invalid-input': 'INVALID_INPUT',
  'permission-denied': 'PERMISSION_DENIED',
  'egress-denied': 'EGRESS_DENIED',
  'not-found': 'NOT_FOUND',
  'limit-exceeded': 'LIMIT_EXCEEDED',
  failed: 'TOOL_ERROR',
};

function toolError(e) {
  // An import's `err` is thrown as an Error whose `payload` is the WIT variant.
  const p = e && e.payload;
  if (!p || typeof p.tag !== 'string') {
    return new ScriptError('TOOL_ERROR', StringOf(e && e.message));
  }
  const text = StringOf(p.val);
  const m = /^([A-Z][A-Z_]+): ([\s\S]*)$/.exec(text);
  // In an execution every host call is a tool call.
  if (m) return new ScriptError(m[1] === 'MAX_HOST_CALLS' ? 'MAX_TOOL_CALLS' : m[1], m[2]);
  return new ScriptError(TAG_CODES[p.tag] || 'TOOL_ERROR', text);
}

function callTool(name, args) {
  return new Promise((resolve) => {
    if (typeof name !== 'string') {
      throw new ScriptError('INVALID_INPUT', 'callTool(name, args): name is a string like "@scope/plugin.action"');
    }
    const dot = name.lastIndexOf('.');
    const slash = name.indexOf('/');
    if (dot < 0 || dot < slash) {
      throw new ScriptError('INVALID_INPUT', `callTool: "${name}" is not "@scope/plugin.action"`);
    }
    const text = stringify(args === undefined ? {} : args);
    if (text === undefined) {
      throw new ScriptError('INVALID_INPUT', 'callTool: args must be JSON');
    }
    let out;
    try {
      out = hostCall(name.slice(0, dot), name.slice(dot + 1), text);
    } catch (e) {
      throw toolError(e);
    }
    resolve(parse(out));
  });
}

function position(e) {
  const p = rawPosition(e);
  return p.line > 0 ? { line: p.line - HEADER_LINES, column: p.column } : {};
}

// What a thrown value says, safely: a script may throw anything, a Proxy or an
// object whose getters throw included.
function describeError(e, fallback) {
  try {
    return describeUnsafe(e, fallback);
  } catch (_) {
    return { code: fallback, message: 'the script threw a value that cannot be shown' };
  }
}

function describeUnsafe(e, fallback) {
  const isObj = e !== null && (typeof e === 'object' || typeof e === 'function');
  let code = fallback;
  if (isObj && typeof e.code === 'string' && /^[A-Z][A-Z_]{1,40}$/.test(e.code)) code = e.code;
  let message;
  try {
    message = isObj && 'message' in e ? StringOf(e.message) : StringOf(e);
  } catch (_) {
    message = 'an error that cannot be shown';
  }
  if (isObj && typeof e.name === 'string' && e.name !== 'Error' && !(e instanceof ScriptError)) {
    message = `${e.name}: ${message}`;
  }
  // The engine's allocation failed: the sandbox's memory limit, in effect.
  if (/^(InternalError: )?out of memory$/.test(message)) code = 'MEMORY_LIMIT';
  const out = { code, message: message.slice(0, 2000) };
  const pos = position(e);
  if (pos.line > 0) out.line = pos.line;
  if (pos.column > 0) out.column = pos.column;
  return out;
}

export function describe() {
  return stringify([{ name: 'run', description: 'Runs a JavaScript script' }]);
}

export async function invoke(action, inputText) {
  if (action !== 'run') {
    const e = new Error('unknown action');
    e.payload = { tag: 'not-found', val: `no action named ${action}` };
    throw e;
  }
  const req = parse(inputText);
  const maxLines = req.max_log_lines | 0;
  const maxBytes = req.max_log_bytes | 0;
  const maxOutput = Number(req.max_output_bytes) || Infinity;
  const logs = [];
  let logBytes = 0;
  let dropped = 0;
  const write = (level) => (...args) => {
    let line;
    try {
      line = args.map((a) => (typeof a === 'string' ? a : stringify(a) ?? StringOf(a))).join(' ');
    } catch (_) {
      line = args.map((a) => StringOf(a)).join(' ');
    }
    if (logs.length >= maxLines || logBytes + line.length > maxBytes) {
      dropped += 1;
      return;
    }
    logBytes += line.length;
    logs.push({ level, message: line });
  };
  const consoleObj = {
    log: write('info'),
    info: write('info'),
    debug: write('debug'),
    warn: write('warn'),
    error: write('error'),
  };
  // The answer is written as text around the value's JSON, so a large value is
  // not parsed and serialised again.
  const answer = (head) => {
    let out = '{' + head + ',"logs":' + stringify(logs);
    if (dropped > 0) out += ',"logs_dropped":' + dropped;
    return out + '}';
  };
  const failure = (error) => answer('"ok":false,"error":' + stringify(error));
  let fn;
  try {
    fn = new AsyncFunction('callTool', 'input', 'console', req.code);
  } catch (e) {
    return failure(describeError(e, 'SYNTAX_ERROR'));
  }
  let value;
  try {
    value = await fn(callTool, req.input, consoleObj);
  } catch (e) {
    return failure(describeError(e, 'SCRIPT_ERROR'));
  }
  // Checked here too (the host checks the whole answer), so a script returning a
  // huge string ends with the right code before the engine spends memory on it.
  const tooLarge = (n) =>
    failure({ code: 'OUTPUT_TOO_LARGE', message: `the result is ${n} bytes or more; the limit is ${maxOutput}` });
  if (typeof value === 'string' && value.length > maxOutput) return tooLarge(value.length);
  let text;
  try {
    text = stringify(value === undefined ? null : value);
  } catch (e) {
    const error = describeError(e, 'SCRIPT_ERROR');
    error.message = `the result is not JSON: ${error.message}`;
    delete error.line;
    delete error.column;
    return failure(error);
  }
  if (text !== undefined && text.length > maxOutput) return tooLarge(text.length);
  return answer('"ok":true,"value":' + (text === undefined ? 'null' : text));
}
