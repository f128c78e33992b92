// Run inside a folder where the packed tarball was installed (no compiler on PATH): the
// prebuilt addon loads, a forward pass and one training step run on the CPU.
import { alexnet, backendInfo, SyntheticDataset, Tensor, Trainer } from 'alexnet-node';

const info = backendInfo();
if (!info.addon.path.includes('prebuilds')) throw new Error(`expected the prebuilt addon, got ${info.addon.path}`);
const model = alexnet({ config: 'seed', init: 'kaiming' });
model.eval();
const x = Tensor.from(new Float32Array(2 * 3 * 227 * 227).map(() => Math.random() - 0.5), [2, 3, 227, 227]);
const y = await model.forward(x).data();
if (y.length !== 4 || !Array.from(y).every(Number.isFinite)) throw new Error('forward pass failed');
model.train();
const t = new Trainer({ model, config: {}, train: new SyntheticDataset({ size: 8 }), batchSize: 4, epochs: 1, maxSteps: 1, optimizer: { lr: 0.002 }, workers: 0 });
const s = await t.run();
await t.close();
if (s.steps !== 1 || !Number.isFinite(s.trainLoss)) throw new Error(`training step failed: ${JSON.stringify(s)}`);
console.log(`package smoke test: prebuilt ${info.addon.path}; forward ok; one training step, loss ${s.trainLoss.toFixed(4)}`);
