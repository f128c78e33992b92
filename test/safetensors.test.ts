import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  loadCheckpoint,
  parseSafetensors,
  readSafetensors,
  saveCheckpoint,
  serializeSafetensors,
  writeSafetensors,
  type SafetensorsInput,
} from '../src/io/index.js';
import { rng } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'alexnet-safetensors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileNo = 0;
const fresh = (name = 'f'): string => join(dir, `${name}-${fileNo++}.safetensors`);

/** Expects the promise to reject with ERR_CHECKPOINT and a message matching `message`. */
async function expectCheckpointError(p: Promise<unknown>, message: RegExp): Promise<Error> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an ERR_CHECKPOINT error').toBeInstanceOf(Error);
  expect((caught as Error).message).toMatch(message);
  expect((caught as { code?: string }).code, (caught as Error).message).toBe('ERR_CHECKPOINT');
  return caught as Error;
}

/** An independent encoder: the file as the format describes it, with a raw header string. */
function rawFile(header: string | Buffer, data: Uint8Array = new Uint8Array(0), lengthField?: bigint): Buffer {
  const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthField ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

/** CRC-32 (IEEE, reflected 0xEDB88320), one bit at a time: the slow, obvious reference. */
function bitwiseCrc32(data: ArrayLike<number>): string {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) {
    c ^= data[i]!;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ((c ^ 0xffffffff) >>> 0).toString(16).padStart(8, '0');
}

function bytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function randomF32(n: number, r: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() - 0.5) * 10 ** Math.floor(r() * 8 - 4);
  return a;
}

function randomI32(n: number, r: () => number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.floor(r() * 2 ** 32) - 2 ** 31;
  return a;
}

describe('safetensors round trip', () => {
  it('writes and reads random F32/I32 tensors of several shapes (scalar and empty included) with metadata', async () => {
    const r = rng();
    const shapes: number[][] = [[], [0, 3], [1], [7], [2, 3, 4], [5, 1, 3, 2], [0]];
    const tensors: Record<string, SafetensorsInput> = {};
    shapes.forEach((shape, i) => {
      const n = shape.reduce((a, b) => a * b, 1);
      tensors[`f32.${i}`] = { dtype: 'F32', shape, data: randomF32(n, r) };
      tensors[`i32.${i}`] = { dtype: 'I32', shape, data: randomI32(n, r) };
    });
    tensors['features.0.weight'] = { dtype: 'F32', shape: [4, 3, 3, 3], data: randomF32(108, r) };
    const metadata = { format: 'pt', note: 'ünïcödé ✓ "quoted" \\ back\nslash', empty: '' };
    const path = fresh();
    await writeSafetensors(path, tensors, metadata);
    const back = await readSafetensors(path);
    expect(back.metadata).toEqual(metadata);
    expect([...back.tensors.keys()].sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const got = back.tensors.get(name)!;
      expect(got.dtype, name).toBe(t.dtype);
      expect(got.shape, name).toEqual(t.shape);
      expect(got.data.constructor, name).toBe(t.data.constructor);
      expect(Buffer.from(bytes(got.data)).equals(Buffer.from(bytes(t.data))), `${name} bytes`).toBe(true);
    }
    // The same bytes in memory, and parsed from memory.
    const file = await readFile(path);
    expect(serializeSafetensors(tensors, metadata).equals(file)).toBe(true);
    const parsed = parseSafetensors(file);
    expect(Buffer.from(bytes(parsed.tensors.get('f32.4')!.data)).equals(Buffer.from(bytes(tensors['f32.4']!.data)))).toBe(true);
    // Reading from a Buffer through readSafetensors too; and a view into a larger buffer.
    const fromBuffer = await readSafetensors(Buffer.concat([Buffer.alloc(3), file]).subarray(3));
    expect(fromBuffer.tensors.get('i32.2')!.data).toEqual(tensors['i32.2']!.data);
  });

  it('lays out the header exactly: u64 LE length, sorted JSON, space padding to 8 bytes, data in key order', async () => {
    const path = fresh();
    await writeSafetensors(
      path,
      { b: { dtype: 'I32', shape: [2], data: Int32Array.from([1, -2]) }, a: { dtype: 'F32', shape: [], data: Float32Array.from([1.5]) } },
      { k: 'v' },
    );
    // The checksums: CRC-32 of each tensor's bytes, from the bitwise reference below.
    const sums = `{\\"a\\":\\"${bitwiseCrc32([0x00, 0x00, 0xc0, 0x3f])}\\",\\"b\\":\\"${bitwiseCrc32([1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff])}\\"}`;
    const json = `{"__metadata__":{"alexnet.crc32":"${sums}","k":"v"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[2],"data_offsets":[4,12]}}`;
    expect(json.length).toBe(190); // padded to 192
    const expected = Buffer.concat([
      Buffer.from([192, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from(json + '  ', 'ascii'),
      Buffer.from([0x00, 0x00, 0xc0, 0x3f]), // 1.5f
      Buffer.from([1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff]), // 1, -2
    ]);
    const got = await readFile(path);
    expect(got.toString('hex')).toBe(expected.toString('hex'));
    expect(got.length).toBe(8 + 192 + 12);
  });

  it('omits __metadata__ when there is none and writes an empty file as an 8-byte-aligned "{}"', async () => {
    const path = fresh();
    await writeSafetensors(path, {}, {});
    const got = await readFile(path);
    expect(got.toString('hex')).toBe(Buffer.concat([Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{}      ')]).toString('hex'));
    const back = await readSafetensors(path);
    expect(back.tensors.size).toBe(0);
    expect(back.metadata).toEqual({});
  });

  it('reads a file from an independent encoder: other dtypes, unsorted keys, metadata last, no padding', async () => {
    const r = rng();
    const f64 = Float64Array.from({ length: 6 }, () => r() - 0.5);
    const u8 = Uint8Array.from({ length: 5 }, () => Math.floor(r() * 256));
    const i64 = BigInt64Array.from([-3n, 2n ** 62n]);
    const f16 = Uint16Array.from([0x3c00, 0xc000, 0x7bff]); // 1, -2, 65504
    const i32 = Int32Array.from([7, -8, 9]);
    // Data order differs from key order on purpose.
    const data = Buffer.concat([bytes(i64), bytes(f64), bytes(f16), bytes(u8), bytes(i32)]);
    const o = { i64: [0, 16], f64: [16, 64], f16: [64, 70], u8: [70, 75], i32: [75, 87] };
    const header =
      `{"u8":{"dtype":"U8","shape":[5],"data_offsets":[${o.u8}]},` +
      `"f64":{"shape":[2,3],"dtype":"F64","data_offsets":[${o.f64}]},` +
      `"i64":{"dtype":"I64","shape":[2],"data_offsets":[${o.i64}]},` +
      `"f16":{"dtype":"F16","shape":[3,1],"data_offsets":[${o.f16}]},` +
      `"i32":{"dtype":"I32","shape":[3],"data_offsets":[${o.i32}]},` +
      `"__metadata__":{"format":"pt","x":"1"}}`;
    const path = fresh();
    await writeFile(path, rawFile(header, data));
    const back = await readSafetensors(path);
    expect(back.metadata).toEqual({ format: 'pt', x: '1' });
    expect(back.tensors.get('f64')).toEqual({ dtype: 'F64', shape: [2, 3], data: f64 });
    expect(back.tensors.get('u8')).toEqual({ dtype: 'U8', shape: [5], data: u8 });
    expect(back.tensors.get('i64')).toEqual({ dtype: 'I64', shape: [2], data: i64 });
    expect(back.tensors.get('f16')).toEqual({ dtype: 'F16', shape: [3, 1], data: f16 });
    // i32 sits at an odd offset in the file: the reader copies it into an aligned array.
    expect(back.tensors.get('i32')).toEqual({ dtype: 'I32', shape: [3], data: i32 });
    expect([...back.tensors.keys()]).toEqual(['u8', 'f64', 'i64', 'f16', 'i32']);
  });

  it('rejects bad inputs on write', async () => {
    const path = fresh();
    await expectCheckpointError(writeSafetensors(path, { a: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }), /holds 4 elements but data has 3/);
    await expectCheckpointError(writeSafetensors(path, { a: { dtype: 'I32', shape: [1], data: new Float32Array(1) } }), /dtype I32 needs a Int32Array, got Float32Array/);
    await expectCheckpointError(writeSafetensors(path, { a: { dtype: 'F32', shape: [-1], data: new Float32Array(1) } }), /non-negative integers/);
    await expectCheckpointError(writeSafetensors(path, { __metadata__: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }), /not a valid tensor name/);
    await expectCheckpointError(writeSafetensors(path, {}, { k: 3 as unknown as string }), /metadata 'k' must be a string/);
    await expectCheckpointError(writeSafetensors(join(dir, 'no-such-dir', 'x.safetensors'), {}), /ENOENT/);
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('safetensors: truncated and hostile files', () => {
  const F32x2 = (offsets = '0,8', shape = '[2]', dtype = 'F32'): string => `{"a":{"dtype":"${dtype}","shape":${shape},"data_offsets":[${offsets}]}}`;
  const eight = new Uint8Array(8);

  async function rejects(file: Buffer, message: RegExp): Promise<void> {
    const path = fresh('bad');
    await writeFile(path, file);
    const e = await expectCheckpointError(readSafetensors(path), message);
    expect(e.message).toContain(path); // names the file
    // The in-memory parser gives the same answer.
    await expectCheckpointError(readSafetensors(file), message);
  }

  it('a valid baseline reads', async () => {
    const path = fresh();
    await writeFile(path, rawFile(F32x2(), eight));
    expect((await readSafetensors(path)).tensors.get('a')!.data).toEqual(new Float32Array(2));
  });

  it('0-byte and 5-byte files', async () => {
    await rejects(Buffer.alloc(0), /0 bytes is too short/);
    await rejects(Buffer.alloc(5), /5 bytes is too short/);
  });

  it('header length 2^60 (no allocation of that size) and larger than the file', async () => {
    const before = process.memoryUsage().arrayBuffers;
    await rejects(rawFile(F32x2(), eight, 2n ** 60n), /header length 1152921504606846976 exceeds the 100000000-byte limit/);
    await rejects(rawFile(F32x2(), eight, 2n ** 64n - 1n), /exceeds the 100000000-byte limit/);
    await rejects(rawFile(F32x2(), eight, 99_000_000n), /header length 99000000 exceeds the 62 bytes after the length field/);
    await rejects(rawFile('{}', new Uint8Array(0), 3n), /header length 3 exceeds the 2 bytes after the length field/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(50_000_000);
  });

  it('truncated data, and a tensor claiming gigabytes in a tiny file', async () => {
    await rejects(rawFile(F32x2(), new Uint8Array(5)), /tensor 'a': data_offsets \[0, 8\] run past the end of the 5-byte data region/);
    await rejects(rawFile(F32x2('0,4000000000', '[1000000000]'), eight), /run past the end of the 8-byte data region/);
    // A real file cut short.
    const path = fresh();
    await writeSafetensors(path, { w: { dtype: 'F32', shape: [100], data: new Float32Array(100) } });
    await truncate(path, (await readFile(path)).length - 7);
    await expectCheckpointError(readSafetensors(path), /run past the end/);
  });

  it('JSON garbage, invalid UTF-8, a header that is not an object, duplicate keys', async () => {
    await rejects(rawFile('{"a": nope'), /the header is not valid JSON/);
    await rejects(rawFile('[1, 2, 3]'), /does not start with '\{'/);
    await rejects(rawFile('"str"'), /does not start with '\{'/);
    await rejects(rawFile(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), /not valid UTF-8/);
    await rejects(rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, new Uint8Array(4)), /the key 'a' more than once/);
    await rejects(rawFile(`{"a":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}`, new Uint8Array(4)), /the key 'dtype' more than once/);
    await rejects(rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a\\u0062":1,"ab":2}`, new Uint8Array(4)), /the key 'ab' more than once/);
    await rejects(rawFile(`{"a":[1,2]}`), /tensor 'a': the entry is not an object/);
  });

  it('bad offsets: overlapping, out of range, reversed, not integers', async () => {
    const two = `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`;
    await rejects(rawFile(two, new Uint8Array(12)), /tensors 'a' and 'b' overlap/);
    const same = `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`;
    await rejects(rawFile(same, new Uint8Array(4)), /overlap/);
    await rejects(rawFile(F32x2('8,16'), new Uint8Array(8)), /run past the end of the 8-byte data region/);
    await rejects(rawFile(F32x2('8,0'), eight), /begin after they end/);
    await rejects(rawFile(F32x2('0.5,8'), eight), /data_offsets must be two non-negative integers, got \[0.5,8\]/);
    await rejects(rawFile(F32x2('-8,0'), eight), /data_offsets must be two non-negative integers/);
    await rejects(rawFile(F32x2('0,8,16'), eight), /data_offsets must be two non-negative integers/);
    await rejects(rawFile(F32x2('0,1e300'), eight), /data_offsets must be two non-negative integers/);
    await rejects(rawFile(`{"a":{"dtype":"F32","shape":[2]}}`, eight), /data_offsets must be two non-negative integers, got undefined/);
  });

  it('bad shapes: negative, fractional, not an array, numel mismatch, overflow', async () => {
    await rejects(rawFile(F32x2('0,8', '[-2]'), eight), /shape must be an array of non-negative integers, got \[-2\]/);
    await rejects(rawFile(F32x2('0,8', '[2.5]'), eight), /shape must be an array of non-negative integers, got \[2.5\]/);
    await rejects(rawFile(F32x2('0,8', '"2"'), eight), /shape must be an array of non-negative integers/);
    await rejects(rawFile(F32x2('0,8', '[2,"1"]'), eight), /shape must be an array of non-negative integers/);
    await rejects(rawFile(F32x2('0,8', '[3]'), eight), /shape \[3\] of F32 needs more than 8 bytes but data_offsets \[0, 8\] hold 8/);
    await rejects(rawFile(F32x2('0,8', '[1]'), eight), /shape \[1\] of F32 needs 4 bytes but data_offsets \[0, 8\] hold 8/);
    await rejects(rawFile(F32x2('0,8', '[4503599627370496,4503599627370496,0,3]'), eight), /needs 0 bytes/);
    await rejects(rawFile(F32x2('0,8', '[4503599627370496,4503599627370496]'), eight), /needs more than 8 bytes/);
    await rejects(rawFile(F32x2('0,6', '[2]', 'I32'), new Uint8Array(6)), /needs more than 6 bytes/);
  });

  it('unknown dtype', async () => {
    await rejects(rawFile(F32x2('0,8', '[2]', 'Q8'), eight), /tensor 'a': unknown dtype "Q8"/);
    await rejects(rawFile(`{"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}}`, eight), /unknown dtype 7/);
  });

  it('holes: at the start, between tensors, and trailing bytes', async () => {
    await rejects(rawFile(F32x2('4,12'), new Uint8Array(12)), /bytes 0\.\.4 of the data region belong to no tensor \(a hole before 'a'\)/);
    const gap = `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`;
    await rejects(rawFile(gap, new Uint8Array(12)), /bytes 4\.\.8 .* hole before 'b'/);
    await rejects(rawFile(F32x2(), new Uint8Array(9)), /the data region is 9 bytes but the tensors cover 8; 1 trailing bytes/);
    await rejects(rawFile('{}', new Uint8Array(1)), /the data region is 1 bytes but the tensors cover 0/);
  });

  it('metadata: non-string values, not an object', async () => {
    await rejects(rawFile('{"__metadata__":{"step":3}}'), /__metadata__ 'step' must be a string, got 3/);
    await rejects(rawFile('{"__metadata__":{"a":"x","b":{"c":"d"}}}'), /__metadata__ 'b' must be a string/);
    await rejects(rawFile('{"__metadata__":["x"]}'), /__metadata__ must be an object of strings/);
    // null is what some writers put for "no metadata".
    expect((await readSafetensors(rawFile('{"__metadata__":null}'))).metadata).toEqual({});
  });

  it('a directory and a missing path', async () => {
    const sub = join(dir, 'a-directory.safetensors');
    await mkdir(sub);
    await expectCheckpointError(readSafetensors(sub), /not a regular file \(it is a directory\)/);
    await expectCheckpointError(readSafetensors(join(dir, 'missing.safetensors')), /missing\.safetensors: cannot open \(ENOENT\)/);
  });
});

describe('safetensors: atomic writes', () => {
  const tempFiles = async (): Promise<string[]> => (await readdir(dir)).filter((f) => f.includes('.tmp-'));
  const v1 = { w: { dtype: 'F32' as const, shape: [64], data: Float32Array.from({ length: 64 }, (_, i) => i) } };
  const v2 = { w: { dtype: 'F32' as const, shape: [64], data: Float32Array.from({ length: 64 }, (_, i) => -i) } };

  it('leaves no temporary file after a successful write, and replaces the old file', async () => {
    const path = fresh('atomic');
    await writeSafetensors(path, v1, { version: '1' });
    await writeSafetensors(path, v2, { version: '2' });
    expect(await tempFiles()).toEqual([]);
    const back = await readSafetensors(path);
    expect(back.metadata.version).toBe('2');
    expect(back.tensors.get('w')!.data).toEqual(v2.w.data);
  });

  it('a write that fails part-way (in the header, in the data, at the last byte) leaves the previous file intact', async () => {
    const path = fresh('atomic');
    await writeSafetensors(path, v1, { version: '1' });
    const good = await readFile(path);
    for (const failAfterBytes of [0, 5, 40, good.length - 100, good.length - 1]) {
      const e = await expectCheckpointError(writeSafetensors(path, v2, { version: '2' }, { failAfterBytes }), /is unchanged: injected write failure/);
      expect(e.message).toContain(path);
      expect((await readFile(path)).equals(good), `after failing at byte ${failAfterBytes}`).toBe(true);
      const back = await readSafetensors(path);
      expect(back.metadata.version).toBe('1');
      expect(back.tensors.get('w')!.data).toEqual(v1.w.data);
      expect(await tempFiles()).toEqual([]);
    }
    // The same write with room for every byte succeeds.
    await writeSafetensors(path, v2, { version: '2' }, { failAfterBytes: good.length });
    expect((await readSafetensors(path)).metadata.version).toBe('2');
  });

  it('a directory as the target is refused before anything is written', async () => {
    const target = join(dir, 'target-is-a-dir');
    await mkdir(join(target, 'child'), { recursive: true });
    await expectCheckpointError(writeSafetensors(target, v1), /target-is-a-dir: is a directory; give a file name/);
    expect(await tempFiles()).toEqual([]);
  });
});

describe('checkpoints', () => {
  const alexnetShapes: Record<string, number[]> = {
    'features.0.weight': [4, 3, 5, 5],
    'features.0.bias': [4],
    'features.3.weight': [6, 4, 3, 3],
    'features.3.bias': [6],
    'classifier.1.weight': [10, 24],
    'classifier.1.bias': [10],
  };

  function randomWeights(r: () => number, scale = 1): Record<string, { shape: number[]; data: Float32Array }> {
    return Object.fromEntries(
      Object.entries(alexnetShapes).map(([n, s]) => [n, { shape: s, data: Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => scale * (r() - 0.5)) }]),
    );
  }

  it('round-trips weights, momentum, step, epoch, rng state, data order and config', async () => {
    const r = rng();
    const weights = randomWeights(r);
    const momentum = randomWeights(r, 0.01);
    const path = fresh('ckpt');
    const state = {
      weights,
      optimizer: { momentum, config: { kind: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4, convention: 'pytorch' } },
      step: 12345,
      epoch: 7,
      rngState: { seed: 42, counter: [1, 2, 3], dropout: 'abc' },
      dataOrder: Array.from({ length: 50 }, (_, i) => (i * 17) % 50),
      config: { model: 'alexnet', numClasses: 10, batchSize: 128, nested: { lrSchedule: [[0, 0.01], [30, 0.001]] } },
    };
    await saveCheckpoint(path, state);
    const back = await loadCheckpoint(path, { expect: alexnetShapes });
    expect(back.step).toBe(12345);
    expect(back.epoch).toBe(7);
    expect(back.rngState).toEqual(state.rngState);
    expect(back.config).toEqual(state.config);
    expect(back.optimizer!.config).toEqual(state.optimizer.config);
    expect(back.dataOrder).toEqual(Int32Array.from(state.dataOrder));
    expect(Object.keys(back.weights).sort()).toEqual(Object.keys(alexnetShapes).sort());
    for (const n of Object.keys(alexnetShapes)) {
      expect(back.weights[n]!.shape, n).toEqual(alexnetShapes[n]);
      expect(back.weights[n]!.data, n).toEqual(weights[n]!.data);
      expect(back.optimizer!.momentum[n]!.data, n).toEqual(momentum[n]!.data);
    }
    // What PyTorch's safetensors sees: the weights under their state_dict names, format "pt".
    const raw = await readSafetensors(path);
    expect(raw.metadata.format).toBe('pt');
    expect(raw.metadata.checkpoint).toBe('alexnet-node/1');
    expect(raw.metadata.step).toBe('12345');
    expect(raw.tensors.get('features.0.weight')!.dtype).toBe('F32');
    expect(raw.tensors.has('optimizer.momentum.classifier.1.bias')).toBe(true);
    expect(raw.tensors.get('trainer.data_order')!.dtype).toBe('I32');
  });

  it('accepts Tensor-like weights (anything with shape and async data()) and a data-order recipe', async () => {
    const r = rng();
    const w = randomWeights(r);
    const tensorLike = Object.fromEntries(Object.entries(w).map(([n, t]) => [n, { shape: t.shape, data: async () => t.data }]));
    const path = fresh('ckpt');
    await saveCheckpoint(path, { weights: tensorLike, step: 0, epoch: 0, config: {}, dataOrder: { seed: 9, epoch: 3, batch: 17 } });
    const back = await loadCheckpoint(path);
    expect(back.dataOrder).toEqual({ seed: 9, epoch: 3, batch: 17 });
    expect(back.optimizer).toBeUndefined();
    expect(back.rngState).toBeUndefined();
    expect(back.weights['features.3.weight']!.data).toEqual(w['features.3.weight']!.data);
  });

  it('saves real Tensors', async () => {
    const { Tensor } = await import('../src/index.js');
    const data = Float32Array.from({ length: 12 }, (_, i) => i / 3);
    const t = Tensor.from(data, [3, 4]);
    const path = fresh('ckpt');
    await saveCheckpoint(path, { weights: { 'classifier.6.weight': t }, step: 1, epoch: 0, config: {} });
    t.dispose();
    const back = await loadCheckpoint(path, { expect: { 'classifier.6.weight': [3, 4] } });
    expect(back.weights['classifier.6.weight']!.data).toEqual(data);
  });

  it('clear errors: missing or misshapen weights, not a checkpoint, bad state', async () => {
    const r = rng();
    const path = fresh('ckpt');
    await saveCheckpoint(path, { weights: randomWeights(r), step: 1, epoch: 1, config: {} });
    await expectCheckpointError(
      loadCheckpoint(path, { expect: { ...alexnetShapes, 'classifier.4.weight': [10, 10], 'classifier.6.bias': [10] } }),
      /missing weights 'classifier\.4\.weight', 'classifier\.6\.bias'/,
    );
    await expectCheckpointError(loadCheckpoint(path, { expect: { 'features.0.weight': [4, 3, 3, 3] } }), /weight 'features\.0\.weight' has shape \[4, 3, 5, 5\], expected \[4, 3, 3, 3\]/);

    const plain = fresh('plain');
    await writeSafetensors(plain, { x: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }, { format: 'pt' });
    await expectCheckpointError(loadCheckpoint(plain), /not an alexnet-node checkpoint/);
    await expectCheckpointError(loadCheckpoint(join(dir, 'nope.safetensors')), /ENOENT/);

    const w = randomWeights(r);
    await expectCheckpointError(saveCheckpoint(path, { weights: {}, step: 0, epoch: 0, config: {} }), /at least one weight/);
    await expectCheckpointError(saveCheckpoint(path, { weights: w, step: -1, epoch: 0, config: {} }), /step must be a non-negative integer/);
    await expectCheckpointError(saveCheckpoint(path, { weights: w, step: 0, epoch: 1.5, config: {} }), /epoch must be a non-negative integer/);
    await expectCheckpointError(
      saveCheckpoint(path, { weights: w, step: 0, epoch: 0, config: {}, optimizer: { momentum: { 'features.9.weight': w['features.0.weight']! } } }),
      /momentum for 'features\.9\.weight', which is not one of the weights/,
    );
    await expectCheckpointError(
      saveCheckpoint(path, { weights: w, step: 0, epoch: 0, config: {}, optimizer: { momentum: { 'features.0.bias': w['features.0.weight']! } } }),
      /momentum 'features\.0\.bias' has shape \[4, 3, 5, 5\] but the weight has \[4\]/,
    );
    await expectCheckpointError(saveCheckpoint(path, { weights: { 'optimizer.x': w['features.0.bias']! }, step: 0, epoch: 0, config: {} }), /reserved prefix/);
    await expectCheckpointError(saveCheckpoint(path, { weights: w, step: 0, epoch: 0, config: { n: 1n } }), /config is not JSON-serialisable/);
    await expectCheckpointError(saveCheckpoint(path, { weights: w, step: 0, epoch: 0, config: {}, dataOrder: [1, 2.5] }), /dataOrder must hold int32 integers/);
    // None of the failed saves touched the good checkpoint.
    expect((await loadCheckpoint(path)).step).toBe(1);
  });
});
