// Empty sizes on any device (not a test file: test/{conv,linear,pool,lrn}.test.ts run these on
// the CPU, test/cuda-dnn.test.ts on CUDA). The expected values come from the definitions, not
// from a backend: an empty output has the right shape and no elements; a gradient summed over
// an empty batch is zero, or unchanged when accumulating; a product over an empty inner
// dimension is zero (plus the bias, for linear). Inputs that are not empty are fresh random.
import { expect } from 'vitest';
import {
  conv2d,
  conv2dBackward,
  linear,
  linearBackward,
  localResponseNorm,
  localResponseNormBackward,
  matmul,
  maxPool2d,
  maxPool2dBackward,
  Tensor,
} from '../src/index.js';
import { expectClose, f32, f64, rng, uniform } from './helpers.js';

const count = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

function random(shape: number[], r: () => number, device: string): Tensor<'float32'> {
  return Tensor.from(f32(uniform(count(shape), r)), shape, { device });
}

/** A tensor of `shape` holding NaN: whatever the operator must overwrite cannot pass by luck. */
function garbage(shape: number[], device: string): Tensor<'float32'> {
  return Tensor.from(new Float32Array(count(shape)).fill(Number.NaN), shape, { device });
}

async function expectEmpty(t: Tensor | null, shape: number[], label: string): Promise<void> {
  expect(t, label).not.toBeNull();
  expect(t!.shape, label).toEqual(shape);
  expect((await t!.data()).length, label).toBe(0);
}

async function expectZeros(t: Tensor | null, shape: number[], label: string): Promise<void> {
  expect(t, label).not.toBeNull();
  expect(t!.shape, label).toEqual(shape);
  expectClose(await t!.data(), new Float64Array(count(shape)), { atol: 0, rtol: 0, label });
}

/** linear and matmul with an empty batch, inner dimension or output. */
export async function checkEmptyLinear(device: string): Promise<void> {
  const r = rng();
  const tag = (s: string) => `${device}: ${s}`;

  // B = 0: y is [0, out]; dw, db are empty sums
  {
    const w = random([5, 3], r, device);
    const b = random([5], r, device);
    const x = Tensor.from(new Float32Array(0), [0, 3], { device });
    const dy = Tensor.from(new Float32Array(0), [0, 5], { device });
    await expectEmpty(linear(x, w, b), [0, 5], tag('linear, empty batch: y'));
    const g = linearBackward(dy, x, w, { gradWeight: garbage([5, 3], device), gradBias: garbage([5], device) });
    await expectEmpty(g.gradInput, [0, 3], tag('linearBackward, empty batch: gradInput'));
    await expectZeros(g.gradWeight, [5, 3], tag('linearBackward, empty batch: gradWeight'));
    await expectZeros(g.gradBias, [5], tag('linearBackward, empty batch: gradBias'));
    const gw = random([5, 3], r, device);
    const gb = random([5], r, device);
    const gw0 = await gw.data();
    const gb0 = await gb.data();
    linearBackward(dy, x, w, { gradWeight: gw, gradBias: gb, accumulate: true });
    expectClose(await gw.data(), gw0, { atol: 0, rtol: 0, label: tag('linearBackward, empty batch, accumulate: gradWeight unchanged') });
    expectClose(await gb.data(), gb0, { atol: 0, rtol: 0, label: tag('linearBackward, empty batch, accumulate: gradBias unchanged') });
  }

  // in = 0: y = bias (or zeros); dx and dw are empty; db is the usual column sum
  {
    const B = 4, out = 5;
    const x = Tensor.from(new Float32Array(0), [B, 0], { device });
    const w = Tensor.from(new Float32Array(0), [out, 0], { device });
    const bias = random([out], r, device);
    const bs = await bias.data();
    const y = linear(x, w, bias);
    expect(y.shape).toEqual([B, out]);
    expectClose(await y.data(), Array.from({ length: B * out }, (_, i) => bs[i % out]!), { atol: 0, rtol: 0, label: tag('linear, in = 0: y = bias') });
    await expectZeros(linear(x, w, null), [B, out], tag('linear, in = 0, no bias: y = 0'));
    const dy = random([B, out], r, device);
    const dys = f64(await dy.data());
    const g = linearBackward(dy, x, w);
    await expectEmpty(g.gradInput, [B, 0], tag('linearBackward, in = 0: gradInput'));
    await expectEmpty(g.gradWeight, [out, 0], tag('linearBackward, in = 0: gradWeight'));
    const sums = Array.from({ length: out }, (_, j) => Array.from({ length: B }, (_, n) => dys[n * out + j]!).reduce((a, v) => a + v, 0));
    expectClose(await g.gradBias!.data(), sums, { atol: 1e-6, rtol: 1e-6, label: tag('linearBackward, in = 0: gradBias') });
  }

  // out = 0: y is empty; dx = dy @ w sums over nothing: zeros
  {
    const B = 4, inF = 3;
    const x = random([B, inF], r, device);
    const w = Tensor.from(new Float32Array(0), [0, inF], { device });
    const b = Tensor.from(new Float32Array(0), [0], { device });
    await expectEmpty(linear(x, w, b), [B, 0], tag('linear, out = 0: y'));
    const g = linearBackward(Tensor.from(new Float32Array(0), [B, 0], { device }), x, w);
    await expectZeros(g.gradInput, [B, inF], tag('linearBackward, out = 0: gradInput'));
    await expectEmpty(g.gradWeight, [0, inF], tag('linearBackward, out = 0: gradWeight'));
    await expectEmpty(g.gradBias, [0], tag('linearBackward, out = 0: gradBias'));
  }

  // matmul over an empty inner dimension, each transpose; and an empty M
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    const M = 3, N = 4;
    const a = Tensor.from(new Float32Array(0), ta ? [0, M] : [M, 0], { device });
    const b = Tensor.from(new Float32Array(0), tb ? [N, 0] : [0, N], { device });
    await expectZeros(matmul(a, b, { transA: ta, transB: tb }), [M, N], tag(`matmul K = 0 (transA ${ta}, transB ${tb})`));
  }
  await expectEmpty(matmul(Tensor.from(new Float32Array(0), [0, 5], { device }), random([5, 4], r, device)), [0, 4], tag('matmul M = 0'));
  await expectEmpty(matmul(random([3, 5], r, device), Tensor.from(new Float32Array(0), [5, 0], { device })), [3, 0], tag('matmul N = 0'));
}

/** conv2d with an empty batch (the binding rejects empty channels and planes). */
export async function checkEmptyConv(device: string): Promise<void> {
  const r = rng();
  const tag = (s: string) => `${device}: ${s}`;
  for (const c of [
    { C: 3, O: 4, groups: 1 },
    { C: 4, O: 6, groups: 2 },
  ]) {
    const H = 7, W = 6, k = 3, stride = 2, padding = 1;
    const Ho = Math.floor((H + 2 * padding - k) / stride) + 1, Wo = Math.floor((W + 2 * padding - k) / stride) + 1;
    const wShape = [c.O, c.C / c.groups, k, k];
    const x = Tensor.from(new Float32Array(0), [0, c.C, H, W], { device });
    const w = random(wShape, r, device);
    const b = random([c.O], r, device);
    const opts = { stride, padding, groups: c.groups };
    await expectEmpty(conv2d(x, w, b, opts), [0, c.O, Ho, Wo], tag(`conv2d, empty batch, groups ${c.groups}: y`));
    await expectEmpty(conv2d(x, w, b, { ...opts, relu: true }), [0, c.O, Ho, Wo], tag(`conv2d + relu, empty batch: y`));
    const dy = Tensor.from(new Float32Array(0), [0, c.O, Ho, Wo], { device });
    const g = conv2dBackward(dy, x, w, { ...opts, gradWeight: garbage(wShape, device), gradBias: garbage([c.O], device) });
    await expectEmpty(g.gradInput, [0, c.C, H, W], tag('conv2dBackward, empty batch: gradInput'));
    await expectZeros(g.gradWeight, wShape, tag(`conv2dBackward, empty batch, groups ${c.groups}: gradWeight`));
    await expectZeros(g.gradBias, [c.O], tag('conv2dBackward, empty batch: gradBias'));
    const gw = random(wShape, r, device);
    const gb = random([c.O], r, device);
    const gw0 = await gw.data();
    const gb0 = await gb.data();
    conv2dBackward(dy, x, w, { ...opts, gradWeight: gw, gradBias: gb, accumulate: true });
    expectClose(await gw.data(), gw0, { atol: 0, rtol: 0, label: tag('conv2dBackward, empty batch, accumulate: gradWeight unchanged') });
    expectClose(await gb.data(), gb0, { atol: 0, rtol: 0, label: tag('conv2dBackward, empty batch, accumulate: gradBias unchanged') });
  }
}

/** maxPool2d with an empty batch or no channels. */
export async function checkEmptyPool(device: string): Promise<void> {
  for (const [N, C] of [[0, 3], [2, 0], [0, 0]] as const) {
    const x = Tensor.from(new Float32Array(0), [N, C, 7, 7], { device });
    const o = { kernelSize: [3, 3] as [number, number], stride: [2, 2] as [number, number] };
    const y = maxPool2d(x, o);
    await expectEmpty(y, [N, C, 3, 3], `${device}: maxPool2d [${N}, ${C}, 7, 7]: y`);
    await expectEmpty(maxPool2dBackward(Tensor.from(new Float32Array(0), [N, C, 3, 3], { device }), x, y, o), [N, C, 7, 7], `${device}: maxPool2dBackward [${N}, ${C}, 7, 7]: gradInput`);
  }
}

/** localResponseNorm with an empty batch, channels or plane. */
export async function checkEmptyLrn(device: string): Promise<void> {
  for (const shape of [[0, 5, 3, 4], [2, 0, 3, 4], [2, 5, 0, 4], [3, 4, 0]]) {
    const x = Tensor.from(new Float32Array(0), shape, { device });
    const o = { size: 5, alpha: 1, k: 2 };
    const y = localResponseNorm(x, o);
    await expectEmpty(y, shape, `${device}: localResponseNorm ${JSON.stringify(shape)}: y`);
    await expectEmpty(localResponseNormBackward(Tensor.from(new Float32Array(0), shape, { device }), x, y, o), shape, `${device}: localResponseNormBackward ${JSON.stringify(shape)}: gradInput`);
  }
}
