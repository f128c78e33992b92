// ONNX export: our own protobuf decoded back (structure, attributes, initializer sizes), then
// every configuration run in onnxruntime-node (CPU) on a fresh random input against our forward
// pass, logits within atol 1e-3 + rtol 1e-3; and `alexnet export` on a checkpoint.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { alexnet, encodeOnnx, exportOnnx, saveCheckpoint, Tensor, type AlexNet, type AlexNetConfig } from '../src/index.js';
import { expectClose, normal, rng, uniform } from './helpers.js';

const bin = join(__dirname, '..', 'bin', 'alexnet.js');
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'alexnet-onnx-'));
  dirs.push(d);
  return d;
}

// --- a tiny protobuf reader (test side): field number -> values in order ---------------------
type Field = bigint | Uint8Array | number;
type Msg = Map<number, Field[]>;
function decode(buf: Uint8Array): Msg {
  const out: Msg = new Map();
  let at = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[at++]!;
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  while (at < buf.length) {
    const tag = Number(varint());
    const field = tag >>> 3;
    const wire = tag & 7;
    let value: Field;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const n = Number(varint());
      value = buf.subarray(at, at + n);
      at += n;
    } else if (wire === 5) {
      value = new DataView(buf.buffer, buf.byteOffset + at, 4).getFloat32(0, true);
      at += 4;
    } else throw new Error(`unexpected wire type ${wire} at ${at}`);
    if (!out.has(field)) out.set(field, []);
    out.get(field)!.push(value);
  }
  return out;
}
const all = (m: Msg, f: number): Field[] => m.get(f) ?? [];
const one = (m: Msg, f: number): Field => {
  const v = all(m, f);
  expect(v.length, `field ${f}`).toBe(1);
  return v[0]!;
};
const str = (v: Field): string => new TextDecoder().decode(v as Uint8Array);
const sub = (v: Field): Msg => decode(v as Uint8Array);
const int = (v: Field): number => Number(v as bigint);

/** Model with He weights and small random biases (non-zero biases exercise every bias input). */
function randomModel(config: AlexNetConfig, r: () => number): AlexNet {
  const model = alexnet({ config, init: 'kaiming', seed: Math.floor(r() * 1e6) });
  for (const [name, p] of model.namedParameters()) if (name.endsWith('.bias')) p.assign(Float32Array.from(uniform(p.numel, r, -0.1, 0.1)));
  return model.eval();
}

async function forward(model: AlexNet, x: Float32Array, n: number): Promise<Float32Array> {
  const s = model.inputSize;
  const t = Tensor.from(x, [n, 3, s, s]);
  const y = model.forward(t);
  const out = (await y.data()) as Float32Array;
  t.dispose();
  y.dispose();
  return out;
}

async function runOrt(path: string, x: Float32Array, dims: number[]): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
  try {
    expect(session.inputNames).toEqual(['input']);
    return await session.run({ input: new ort.Tensor('float32', x, dims) });
  } finally {
    await session.release();
  }
}

const TOL = { atol: 1e-3, rtol: 1e-3 };

describe('ONNX export: the protobuf', () => {
  it('paper2012 decodes to the expected ModelProto (ops, attributes, initializers, input/output)', async () => {
    const r = rng();
    const model = randomModel('paper2012', r);
    const bytes = await encodeOnnx(model, { softmax: true });
    const m = decode(bytes);
    expect(int(one(m, 1))).toBe(7); // ir_version for opset 13
    expect(str(one(m, 2))).toBe('alexnet-node');
    const opset = sub(one(m, 8));
    expect(str(all(opset, 1)[0] ?? new Uint8Array())).toBe('');
    expect(int(one(opset, 2))).toBe(13);
    const g = sub(one(m, 7));
    expect(str(one(g, 2))).toBe('alexnet_paper2012');

    const nodes = all(g, 1).map(sub);
    const ops = nodes.map((n) => str(one(n, 4)));
    expect(ops).toEqual([
      'Conv', 'Relu', 'LRN', 'MaxPool', 'Conv', 'Relu', 'LRN', 'MaxPool', 'Conv', 'Relu', 'Conv', 'Relu', 'Conv', 'Relu', 'MaxPool',
      'Flatten', 'Gemm', 'Relu', 'Gemm', 'Relu', 'Gemm', 'Softmax',
    ]);
    const attrs = (n: Msg): Record<string, number | number[]> => {
      const o: Record<string, number | number[]> = {};
      for (const a of all(n, 5).map(sub)) {
        const type = int(one(a, 20));
        const name = str(one(a, 1));
        o[name] = type === 1 ? (one(a, 2) as number) : type === 2 ? int(one(a, 3)) : all(a, 8).map(int);
      }
      return o;
    };
    expect(attrs(nodes[0]!)).toEqual({ kernel_shape: [11, 11], strides: [4, 4], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 });
    expect(attrs(nodes[4]!)).toEqual({ kernel_shape: [5, 5], strides: [1, 1], pads: [2, 2, 2, 2], dilations: [1, 1], group: 2 });
    expect(attrs(nodes[10]!).group).toBe(2);
    const lrn = attrs(nodes[2]!);
    expect(lrn.size).toBe(5);
    expect(lrn.alpha).toBeCloseTo(5e-4, 10);
    expect(lrn.beta).toBeCloseTo(0.75, 10);
    expect(lrn.bias).toBe(2);
    expect(attrs(nodes[3]!)).toEqual({ kernel_shape: [3, 3], strides: [2, 2] });
    expect(attrs(nodes[15]!)).toEqual({ axis: 1 });
    expect(attrs(nodes[16]!)).toEqual({ alpha: 1, beta: 1, transA: 0, transB: 1 });
    expect(all(nodes[16]!, 1).map(str)).toEqual(['flatten.out', 'classifier.1.weight', 'classifier.1.bias']);
    expect(all(nodes[20]!, 2).map(str)).toEqual(['logits']);
    expect(all(nodes[21]!, 2).map(str)).toEqual(['probabilities']);

    // initializers: the state dict, raw float32 little-endian
    const sd = model.stateDict();
    const inits = all(g, 5).map(sub);
    expect(inits.map((t) => str(one(t, 8)))).toEqual([...sd.keys()]);
    for (const t of inits) {
      const name = str(one(t, 8));
      const dims = all(t, 1).map(int);
      expect(dims, name).toEqual([...sd.get(name)!.shape]);
      expect(int(one(t, 2))).toBe(1);
      const raw = one(t, 9) as Uint8Array;
      expect(raw.byteLength).toBe(4 * dims.reduce((a, d) => a * d, 1));
    }
    const w = inits.find((t) => str(one(t, 8)) === 'features.4.weight')!;
    const raw = one(w, 9) as Uint8Array;
    const got = new Float32Array(raw.slice().buffer);
    expect(got).toEqual(await sd.get('features.4.weight')!.data());

    // input [N, 3, 227, 227] with a symbolic N; outputs logits and probabilities [N, 1000]
    const shapeOf = (vi: Msg): (number | string)[] => {
      const tt = sub(one(sub(one(vi, 2)), 1));
      expect(int(one(tt, 1))).toBe(1);
      return all(sub(one(tt, 2)), 1).map(sub).map((d) => (d.has(1) ? int(one(d, 1)) : str(one(d, 2))));
    };
    const input = sub(one(g, 11));
    expect(str(one(input, 1))).toBe('input');
    expect(shapeOf(input)).toEqual(['N', 3, 227, 227]);
    const outs = all(g, 12).map(sub);
    expect(outs.map((o) => str(one(o, 1)))).toEqual(['logits', 'probabilities']);
    expect(shapeOf(outs[0]!)).toEqual(['N', 1000]);
    model.dispose();
  });

  it('a fixed batch and another opset; bad options throw', async () => {
    const model = randomModel('seed', rng());
    const m = decode(await encodeOnnx(model, { batch: 4, opset: 17 }));
    expect(int(one(m, 1))).toBe(8);
    expect(int(one(sub(one(m, 8)), 2))).toBe(17);
    const g = sub(one(m, 7));
    const dims = all(sub(one(sub(one(sub(one(sub(one(g, 11)), 2)), 1)), 2)), 1).map(sub).map((d) => int(one(d, 1)));
    expect(dims).toEqual([4, 3, 227, 227]);
    expect(all(g, 5).length).toBe(16);
    await expect(encodeOnnx(model, { opset: 7 })).rejects.toMatchObject({ code: 'ERR_ARGUMENT' });
    await expect(encodeOnnx(model, { batch: 0 })).rejects.toMatchObject({ code: 'ERR_ARGUMENT' });
    model.dispose();
  });
});

describe('ONNX export: onnxruntime-node (CPU) gives our logits', () => {
  for (const config of ['seed', 'paper2012', 'torchvision'] as const) {
    it(`${config}: logits within atol 1e-3 + rtol 1e-3 on a fresh random batch of 2`, async () => {
      const dir = await tempDir();
      const r = rng();
      const model = randomModel(config, r);
      const s = model.inputSize;
      const path = join(dir, `${config}.onnx`);
      const info = await exportOnnx(model, path, { softmax: true });
      expect(info.initializers).toBe(16);
      expect(info.parameters).toBe(model.numParameters());
      const x = Float32Array.from(normal(2 * 3 * s * s, r));
      const want = await forward(model, x, 2);
      const out = await runOrt(path, x, [2, 3, s, s]);
      expect(out.logits!.dims).toEqual([2, model.numClasses]);
      expectClose(out.logits!.data as Float32Array, want, { ...TOL, label: `${config} logits` });
      // the logits are not trivially small: the comparison means something
      expect(Math.max(...Array.from(want, Math.abs))).toBeGreaterThan(0.1);
      const p = out.probabilities!.data as Float32Array;
      for (let i = 0; i < 2; i++) expect(p.subarray(i * model.numClasses, (i + 1) * model.numClasses).reduce((a, v) => a + v, 0)).toBeCloseTo(1, 4);
      model.dispose();
    });
  }
});

describe('alexnet export (CLI)', () => {
  it('a checkpoint becomes an ONNX file onnxruntime loads and that gives the checkpoint model\'s logits', async () => {
    const dir = await tempDir();
    const r = rng();
    const model = randomModel('seed', r);
    const ckpt = join(dir, 'ck.safetensors');
    const cfg = {
      model: { config: 'seed', numClasses: 2, init: 'kaiming', seed: 0 },
      classNames: ['a', 'b'],
      data: { kind: 'synthetic', trainSize: 8, valSize: 8, seed: 0 },
      inputSize: 227,
    };
    await saveCheckpoint(ckpt, { weights: Object.fromEntries(model.stateDict()), step: 1, epoch: 0, config: cfg });
    const out = join(dir, 'model.onnx');
    const res = spawnSync(process.execPath, [bin, 'export', ckpt, '-o', out, '--opset', '17', '--softmax', '--json'], { encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
    const summary = JSON.parse(res.stdout.trim());
    expect(summary).toMatchObject({ out, config: 'seed', opset: 17, irVersion: 8, initializers: 16, classNames: ['a', 'b'] });
    const x = Float32Array.from(normal(3 * 3 * 227 * 227, r));
    const want = await forward(model, x, 3);
    const got = await runOrt(out, x, [3, 3, 227, 227]);
    expect(got.logits!.dims).toEqual([3, 2]);
    expectClose(got.logits!.data as Float32Array, want, { ...TOL, label: 'CLI export logits' });
    model.dispose();

    const bad = spawnSync(process.execPath, [bin, 'export', ckpt, '-o', out, '--opset', '5'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/opset/);
  });
});
