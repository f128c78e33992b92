// Operators that write into tensors the caller passes (preallocated gradients, in-place
// updates) must refuse any output that shares memory with an input or with another output:
// conv2dBackward(dy, x, w, {gradWeight: w}) used to run and return a wrong gradInput. Disjoint
// views of one storage stay accepted and give the same results as separate tensors.
import { describe, expect, it } from 'vitest';
import { conv2dBackward, copy, linearBackward, sgdStep, Tensor } from '../src/index.js';
import { expectClose, expectCode, f32, rng, uniform } from './helpers.js';

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

interface Slot {
  name: string;
  shape: number[];
}

/**
 * Places every slot in one storage at the given offsets (others get their own storage), filled
 * with the values of `fill` (slot name -> data). Later slots overwrite earlier ones where they
 * overlap, which does not matter: these calls must be refused before reading anything.
 */
function place(slots: Slot[], offsets: Map<string, number>, fill: Map<string, Float32Array>): Map<string, Tensor<'float32'>> {
  const end = Math.max(0, ...slots.filter((s) => offsets.has(s.name)).map((s) => offsets.get(s.name)! + numel(s.shape)));
  const store = Tensor.from(new Float32Array(end), [end]);
  const out = new Map<string, Tensor<'float32'>>();
  for (const s of slots) {
    const off = offsets.get(s.name);
    out.set(s.name, off === undefined ? Tensor.from(fill.get(s.name)!, s.shape) : store.view(off, s.shape));
  }
  return out;
}

/**
 * For each (output, input) and (output, output) pair: the same storage with ranges that share
 * exactly one element (both orders) and, where the shapes match, the very same tensor. Each call
 * must be refused with ERR_ARGUMENT naming both tensors.
 */
function checkAllPairs(
  op: string,
  outputs: Slot[],
  inputs: Slot[],
  call: (t: Map<string, Tensor<'float32'>>) => unknown,
): number {
  const r = rng();
  const all = [...outputs, ...inputs];
  const fill = new Map(all.map((s) => [s.name, f32(uniform(numel(s.shape), r))]));
  let checked = 0;
  const pairs: [Slot, Slot, boolean][] = []; // [output, other, other is an input]
  for (let i = 0; i < outputs.length; i++) {
    for (const b of inputs) pairs.push([outputs[i]!, b, true]);
    for (let j = i + 1; j < outputs.length; j++) pairs.push([outputs[i]!, outputs[j]!, false]);
  }
  for (const [a, b, isInput] of pairs) {
    const na = numel(a.shape);
    const nb = numel(b.shape);
    const layouts: Map<string, number>[] = [
      new Map([[a.name, 0], [b.name, na - 1]]), // a's last element is b's first
      new Map([[b.name, 0], [a.name, nb - 1]]), // b's last element is a's first
    ];
    if (na === nb) layouts.push(new Map([[a.name, 0], [b.name, 0]])); // fully the same memory
    for (const offsets of layouts) {
      const t = place(all, offsets, fill);
      const message = isInput ? `${op}: ${a.name} overlaps an input tensor (${b.name}) in memory` : `${op}: ${a.name} and ${b.name} overlap in memory`;
      expectCode(() => call(t), 'ERR_ARGUMENT', message);
      checked++;
    }
  }
  return checked;
}

/** Results with every tensor in one storage, back to back (disjoint), equal separate tensors. */
async function checkDisjointViews(
  slots: Slot[],
  call: (t: Map<string, Tensor<'float32'>>) => Tensor<'float32'>[],
  label: string,
): Promise<void> {
  const r = rng();
  const fill = new Map(slots.map((s) => [s.name, f32(uniform(numel(s.shape), r))]));
  const separate = place(slots, new Map(), fill);
  const offsets = new Map<string, number>();
  let at = 0;
  for (const s of slots) {
    offsets.set(s.name, at);
    at += numel(s.shape);
  }
  const shared = place(slots, offsets, new Map());
  for (const s of slots) copy(shared.get(s.name)!, Tensor.from(fill.get(s.name)!, s.shape));
  const want = call(separate);
  const got = call(shared);
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const w = await want[i]!.data();
    expect(Array.from(w).some((v) => v !== 0)).toBe(true);
    expectClose(await got[i]!.data(), w, { atol: 0, rtol: 0, label: `${label} output ${i}` });
  }
}

describe('outputs may not alias inputs', () => {
  const N = 2, C = 3, H = 5, W = 4, O = 4, k = 3;
  const conv: { outputs: Slot[]; inputs: Slot[] } = {
    outputs: [
      { name: 'gradWeight', shape: [O, C, k, k] },
      { name: 'gradBias', shape: [O] },
    ],
    inputs: [
      { name: 'gradOutput', shape: [N, O, H - k + 1, W - k + 1] },
      { name: 'input', shape: [N, C, H, W] },
      { name: 'weight', shape: [O, C, k, k] },
    ],
  };
  const convCall = (t: Map<string, Tensor<'float32'>>, accumulate = false) =>
    conv2dBackward(t.get('gradOutput')!, t.get('input')!, t.get('weight')!, {
      gradWeight: t.get('gradWeight')!,
      gradBias: t.get('gradBias')!,
      accumulate,
    });

  it('conv2dBackward refuses gradWeight / gradBias sharing memory with an input or each other', async () => {
    expect(checkAllPairs('conv2dBackward', conv.outputs, conv.inputs, (t) => convCall(t))).toBe(15); // 6 pairs x 2 + gradWeight/weight same + 2
    expect(checkAllPairs('conv2dBackward', conv.outputs, conv.inputs, (t) => convCall(t, true))).toBe(15);
    // the call: the weight as its own gradient
    const r = rng();
    const x = Tensor.from(f32(uniform(N * C * H * W, r)), [N, C, H, W]);
    const w = Tensor.from(f32(uniform(O * C * k * k, r)), [O, C, k, k]);
    const dy = Tensor.from(f32(uniform(N * O * 3 * 2, r)), [N, O, 3, 2]);
    const before = await w.data();
    expectCode(() => conv2dBackward(dy, x, w, { gradWeight: w }), 'ERR_ARGUMENT', /conv2dBackward: gradWeight overlaps an input tensor \(weight\)/);
    // nothing ran: w is unchanged
    expectClose(await w.data(), before, { atol: 0, rtol: 0, label: 'weight after the refused call' });
    await checkDisjointViews([...conv.outputs, ...conv.inputs], (t) => {
      const g = convCall(t);
      return [g.gradInput!, g.gradWeight, g.gradBias!];
    }, 'conv2dBackward on disjoint views');
  });

  const lin: { outputs: Slot[]; inputs: Slot[] } = {
    outputs: [
      { name: 'gradWeight', shape: [4, 6] },
      { name: 'gradBias', shape: [4] },
    ],
    inputs: [
      { name: 'gradOutput', shape: [3, 4] },
      { name: 'input', shape: [3, 6] },
      { name: 'weight', shape: [4, 6] },
    ],
  };
  const linCall = (t: Map<string, Tensor<'float32'>>, accumulate = false) =>
    linearBackward(t.get('gradOutput')!, t.get('input')!, t.get('weight')!, {
      gradWeight: t.get('gradWeight')!,
      gradBias: t.get('gradBias')!,
      accumulate,
    });

  it('linearBackward refuses gradWeight / gradBias sharing memory with an input or each other', async () => {
    expect(checkAllPairs('linearBackward', lin.outputs, lin.inputs, (t) => linCall(t))).toBe(15); // as conv2dBackward
    expect(checkAllPairs('linearBackward', lin.outputs, lin.inputs, (t) => linCall(t, true))).toBe(15);
    await checkDisjointViews([...lin.outputs, ...lin.inputs], (t) => {
      const g = linCall(t);
      return [g.gradInput!, g.gradWeight, g.gradBias!];
    }, 'linearBackward on disjoint views');
  });

  it('sgdStep refuses param / momentumBuffer sharing memory with grad or each other', async () => {
    const outputs: Slot[] = [
      { name: 'param', shape: [7] },
      { name: 'momentumBuffer', shape: [7] },
    ];
    const inputs: Slot[] = [{ name: 'grad', shape: [7] }];
    const call = (t: Map<string, Tensor<'float32'>>) =>
      sgdStep(t.get('param')!, t.get('grad')!, t.get('momentumBuffer')!, { lr: 0.1, momentum: 0.9 });
    expect(checkAllPairs('sgdStep', outputs, inputs, call)).toBe(9); // 3 pairs x 3 layouts (all the same size)
    await checkDisjointViews([...outputs, ...inputs], (t) => {
      call(t);
      return [t.get('param')!, t.get('momentumBuffer')!];
    }, 'sgdStep on disjoint views');
  });
});
