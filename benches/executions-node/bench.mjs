// The same two scripts as `cargo bench -p tenantry-runtime --bench executions`, run
// the way a Node.js platform would: a new isolate (isolated-vm) or a new QuickJS
// runtime (quickjs-emscripten) per execution, with `callTool` a host function.
// Run by scripts/bench-executions; prints one line per case.
//
// The host's tool here is a plain JavaScript function in the Node process (it
// returns `{echo: args}`), where Tenantry's tool call is a nested invocation of
// the Rust echo plugin in a fresh sandbox of its own: the tool side costs Node
// nothing, which favours Node.
import ivm from 'isolated-vm';
import { getQuickJS } from 'quickjs-emscripten';

const SAMPLES = Number(process.env.SAMPLES || 2000);
const ROUNDS = 10;
const SCRIPTS = [
  ['return 1 + 1', 'return 1 + 1'],
  [
    '3 tool calls (JS echo)',
    "let n = 0; for (let i = 0; i < 3; i++) n += (await callTool('@b/echo.echo', {i})).echo.i; return n",
  ],
];

const hostTool = (name, argsJson) => JSON.stringify({ echo: JSON.parse(argsJson) });

async function runIsolatedVm(code) {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const context = await isolate.createContext();
    const jail = context.global;
    await jail.set('__tool', new ivm.Callback(hostTool));
    const src = `(async function () {
      const callTool = async (name, args) => JSON.parse(__tool(name, JSON.stringify(args)));
      ${code}
    })().then((v) => JSON.stringify(v))`;
    const script = await isolate.compileScript(src);
    const out = await script.run(context, { promise: true, timeout: 5000 });
    return JSON.parse(out);
  } finally {
    isolate.dispose();
  }
}

function makeQuickJs(QuickJS) {
  return (code) => {
    const runtime = QuickJS.newRuntime();
    runtime.setMemoryLimit(32 << 20);
    const vm = runtime.newContext();
    try {
      const tool = vm.newFunction('__tool', (name, args) =>
        vm.newString(hostTool(vm.getString(name), vm.getString(args))),
      );
      vm.setProp(vm.global, '__tool', tool);
      tool.dispose();
      const src = `(async function () {
        const callTool = async (name, args) => JSON.parse(__tool(name, JSON.stringify(args)));
        ${code}
      })().then((v) => JSON.stringify(v))`;
      const promise = vm.unwrapResult(vm.evalCode(src));
      runtime.executePendingJobs();
      const state = vm.getPromiseState(promise);
      promise.dispose();
      if (state.type !== 'fulfilled') throw new Error(`promise ${state.type}`);
      const out = JSON.parse(vm.getString(state.value));
      state.value.dispose();
      return out;
    } finally {
      vm.dispose();
      runtime.dispose();
    }
  };
}

function pct(sorted, p) {
  return sorted[Math.round((sorted.length - 1) * p)];
}

const QuickJS = await getQuickJS();
const engines = [
  ['isolated-vm (new isolate + context)', runIsolatedVm],
  ['quickjs-emscripten (new runtime + context)', makeQuickJs(QuickJS)],
];
for (const [engineName, run] of engines) {
  const times = SCRIPTS.map(() => []);
  for (let round = 0; round <= ROUNDS; round++) {
    for (const [i, [, code]] of SCRIPTS.entries()) {
      const n = round === 0 ? 50 : SAMPLES / ROUNDS;
      for (let k = 0; k < n; k++) {
        const t = process.hrtime.bigint();
        const v = await run(code);
        const d = Number(process.hrtime.bigint() - t) / 1e6;
        if (v !== (i === 0 ? 2 : 3)) throw new Error(`${engineName}: got ${v}`);
        if (round > 0) times[i].push(d);
      }
    }
  }
  for (const [i, [name]] of SCRIPTS.entries()) {
    const d = times[i].sort((a, b) => a - b);
    console.log(
      `${engineName}: ${name.padEnd(24)} n=${d.length} p50 ${pct(d, 0.5).toFixed(3)} ms   p90 ${pct(d, 0.9).toFixed(3)} ms   p99 ${pct(d, 0.99).toFixed(3)} ms`,
    );
  }
}
