import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
const [modelPath, inputPath, threadsArg, runsArg] = process.argv.slice(2);
const raw = readFileSync(inputPath);
const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
const hw = Math.round(Math.sqrt(data.length / 3));
const session = await ort.InferenceSession.create(modelPath, {
  executionProviders: ['cpu'], intraOpNumThreads: Number(threadsArg), interOpNumThreads: 1,
  executionMode: 'sequential', graphOptimizationLevel: 'all', enableProfiling: true,
  profileFilePrefix: '/tmp/ortp/prof',
});
const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, hw, hw]) };
for (let i = 0; i < Number(runsArg); i++) await session.run(feeds);
session.endProfiling();
