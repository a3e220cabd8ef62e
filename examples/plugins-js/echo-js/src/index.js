// Echo in JavaScript: a Tenantry plugin built with componentize-js.
//
// Exports of the `tenantry:plugin/plugin` world are plain module exports:
// `describe()` and `invoke(action, input)`. For a `result<string, error>` return,
// a returned string is `ok`; a thrown object with a `payload` (or the thrown value
// itself) becomes the `err` variant `{ tag, val }`.
// Host imports are ES modules named after the WIT interfaces. An import returning
// `result<_, error>` throws when the host refuses (the error is in `.payload`).
import { get as configGet } from 'tenantry:plugin/config@0.1.0';
import { log } from 'tenantry:plugin/log@0.1.0';
import { get as kvGet, set as kvSet } from 'tenantry:plugin/kv@0.1.0';

const ACTIONS = [
  { name: 'echo', description: 'Returns its input and the configured greeting' },
  { name: 'count', description: 'Adds one to a counter in the install\'s key-value store (needs the kv grant)' },
];

class PluginError extends Error {
  constructor(tag, message) {
    super(message);
    this.payload = { tag, val: message };
  }
}

function parse(input) {
  try {
    return JSON.parse(input);
  } catch (e) {
    throw new PluginError('invalid-input', `input is not JSON: ${e.message}`);
  }
}

const actions = {
  echo(input) {
    const config = JSON.parse(configGet());
    log('debug', 'echo-js: echoing');
    return { echo: input, greeting: config.greeting ?? null, runtime: 'componentize-js' };
  },
  count() {
    // kv.get / kv.set throw `{ payload: { tag: 'permission-denied', … } }` when the
    // install has no kv grant; letting it propagate returns that error as the
    // plugin's own, so the invocation ends PERMISSION_DENIED.
    const stored = kvGet('n');
    const n = (stored ? Number(new TextDecoder().decode(stored)) : 0) + 1;
    kvSet('n', new TextEncoder().encode(String(n)));
    return { value: n };
  },
};

export function describe() {
  return JSON.stringify(ACTIONS);
}

export function invoke(action, input) {
  const run = actions[action];
  if (!run) {
    throw new PluginError('not-found', `no action named ${action}`);
  }
  return JSON.stringify(run(parse(input)));
}
