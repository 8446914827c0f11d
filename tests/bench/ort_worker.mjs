// ONNX Runtime worker of tests/bench/bench_e2e.py (the ORT peer of its torch_worker).
//
// Usage: node tests/bench/ort_worker.mjs MODEL.onnx INPUT.bin THREADS RUNS [LOGITS.bin]
//
// INPUT.bin: the input tensor [1, 3, H, W] as raw little-endian float32, H = W from its size.
// Loads the model once on the CPU execution provider (intraOpNumThreads = THREADS,
// interOpNumThreads = 1, sequential, every graph optimisation), runs it once and, when LOGITS.bin
// is given, writes the first output there (raw float32: bench_e2e.py compares it with PyTorch's
// logits), then prints "ready <onnxruntime-node version>".  Each line on stdin ("run") is answered
// with the median of RUNS timed passes in ms, after 2 warm-up passes, as torch_worker does; each pass
// is timed with process.hrtime.bigint() around `await session.run(feeds)` on a tensor built once.
// stdin closed: exit.
//
// ORT_PROFILE=PREFIX in the environment turns on ONNX Runtime's profiler (for comparing its
// operators with jplprof's steps, docs/benchmarks.md; it adds about a microsecond per node to
// every pass, so not for timing): when stdin closes, the trace is written as PREFIX_<date>.json,
// one "Node" event per operator call named "<node>_kernel_time" (args.op_name,
// args.output_type_shape), and its path printed.  For example:
//   echo run | ORT_PROFILE=/tmp/r50 node tests/bench/ort_worker.mjs resnet50.onnx input.bin 2 40
//
// Needs onnxruntime-node in tests/bench/node_modules:
//   ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix tests/bench --ignore-scripts --no-audit --no-fund

import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import ort from 'onnxruntime-node';

const [modelPath, inputPath, threadsArg, runsArg, logitsPath] = process.argv.slice(2);
const threads = Number(threadsArg);
const runs = Number(runsArg);
if (!modelPath || !inputPath || !(threads >= 1) || !(runs >= 1)) {
  process.stderr.write('usage: node ort_worker.mjs MODEL.onnx INPUT.bin THREADS RUNS [LOGITS.bin]\n');
  process.exit(2);
}

const raw = readFileSync(inputPath);
const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
const hw = Math.round(Math.sqrt(data.length / 3));
if (3 * hw * hw !== data.length) {
  process.stderr.write(`${inputPath}: ${data.length} floats is not 3 x H x H\n`);
  process.exit(2);
}

const session = await ort.InferenceSession.create(modelPath, {
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  ...(process.env.ORT_PROFILE ? { enableProfiling: true, profileFilePrefix: process.env.ORT_PROFILE } : {}),
});
const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, hw, hw]) };

const first = await session.run(feeds);
if (logitsPath) {
  const out = first[session.outputNames[0]].data;
  writeFileSync(logitsPath, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
}
process.stdout.write(`ready ${ort.env.versions.node}\n`);

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() !== 'run') continue;
  const times = [];
  for (let i = 0; i < runs + 2; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    const t1 = process.hrtime.bigint();
    if (i >= 2) times.push(Number(t1 - t0) / 1e6);
  }
  process.stdout.write(`${median(times)}\n`);
}
if (process.env.ORT_PROFILE) {
  session.endProfiling(); // onnxruntime-node returns nothing: find the newest PREFIX_*.json
  const dir = dirname(process.env.ORT_PROFILE), base = basename(process.env.ORT_PROFILE) + '_';
  const traces = readdirSync(dir).filter((f) => f.startsWith(base) && f.endsWith('.json'))
    .map((f) => join(dir, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  process.stdout.write(`profile ${traces.length ? traces[0] : '(none written)'}\n`);
}
await session.release();
