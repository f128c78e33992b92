// Run inside a folder where the packed tarball was installed: the addon loads from where the
// install put it, a forward pass and one training step run on the CPU.
//   node package-smoke.mjs           the prebuilt binary (installed where no compiler is on PATH)
//   node package-smoke.mjs source    the addon the install step built from source with node-gyp
import { sep } from 'node:path';
import { alexnet, backendInfo, SyntheticDataset, Tensor, Trainer } from 'alexnet-node';

const source = process.argv[2] === 'source';
const info = backendInfo();
const where = source ? `${sep}node_modules${sep}alexnet-node${sep}build${sep}Release${sep}alexnet.node` : `${sep}node_modules${sep}alexnet-node${sep}prebuilds${sep}`;
if (!info.addon.path.includes(where)) throw new Error(`expected the ${source ? 'source-built' : 'prebuilt'} addon (${where}), got ${info.addon.path}`);
if (source && info.addon.buildSystem !== 'node-gyp') throw new Error(`expected a node-gyp build, got ${info.addon.buildSystem}`);
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
console.log(`package smoke test: ${source ? 'source-built' : 'prebuilt'} ${info.addon.path}; forward ok; one training step, loss ${s.trainLoss.toFixed(4)}`);
