// ONNX export: an AlexNet (or any Sequential of the layers below) as an ONNX ModelProto with
// standard operators of the default domain only, weights as float32 initializers (raw_data,
// little-endian) under their state-dict names (features.0.weight, ...).
//
//   input 'input' float32 [N, 3, S, S] (N symbolic 'N', or fixed with `batch: n`)
//   Conv2d            -> Conv (kernel_shape, strides, pads [top, left, bottom, right], group)
//   ReLU              -> Relu
//   MaxPool2d         -> MaxPool (kernel_shape, strides, pads when non-zero; floor mode)
//   LocalResponseNorm -> LRN (size, alpha, beta, bias = k): ONNX divides alpha by size, as
//                        PyTorch and our layer do, so alpha passes through unchanged
//   Flatten           -> Flatten (axis 1)
//   Linear            -> Gemm (transB 1): y = x W^T + b with W [out, in] as stored
//   Dropout           -> nothing (inference graph)
//   AdaptiveAvgPool2d -> nothing (our layer is the identity at the model's input size)
//   output 'logits' float32 [N, classes]; with `softmax: true` also 'probabilities' (Softmax, axis 1)
//
// The protobuf is written by the small encoder below (varints, fixed32 and length-delimited
// fields; field numbers from onnx/onnx.proto). Large tensors are not copied while encoding:
// messages are lists of byte chunks that are written to the file one after the other.
import { endianness } from 'node:os';
import { alexnetError } from '../errors.js';
import type { AlexNet } from '../models/alexnet.js';
import { AdaptiveAvgPool2d, Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { writeFileAtomic } from './atomic.js';

export interface OnnxExportOptions {
  /** ONNX operator set of the default domain, 11 to 21 (default 13) */
  opset?: number;
  /** 'dynamic' (default): a symbolic batch dimension 'N'; a positive integer: that fixed batch size */
  batch?: 'dynamic' | number;
  /** also output 'probabilities' = Softmax(logits, axis 1) (default false) */
  softmax?: boolean;
  /** input side length (default: the model's `inputSize`) */
  inputSize?: number;
  /** the graph's name (default 'alexnet_<config>') */
  graphName?: string;
}

/** What `encodeOnnx` / `exportOnnx` produced, for a summary. */
export interface OnnxExportInfo {
  opset: number;
  irVersion: number;
  nodes: string[];
  initializers: number;
  parameters: number;
  bytes: number;
}

// ---------------------------------------------------------------------------------------------
// A tiny protobuf writer

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LEN = 2;

class ProtoWriter {
  readonly chunks: Uint8Array[] = [];
  length = 0;
  #buf: number[] = [];

  #flush(): void {
    if (this.#buf.length === 0) return;
    this.chunks.push(Uint8Array.from(this.#buf));
    this.#buf = [];
  }

  #byte(b: number): void {
    this.#buf.push(b);
    this.length++;
  }

  #varint(v: number | bigint): void {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw alexnetError('ERR_ARGUMENT', `onnx: ${v} is not an integer`);
    let x = BigInt.asUintN(64, BigInt(v)); // negative int64: two's complement, 10 bytes
    while (x >= 0x80n) {
      this.#byte(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.#byte(Number(x));
  }

  #tag(field: number, wire: number): void {
    this.#varint((field << 3) | wire);
  }

  /** int64 / int32 / enum field */
  int(field: number, v: number): this {
    this.#tag(field, WIRE_VARINT);
    this.#varint(v);
    return this;
  }

  /** float field (fixed32, little-endian) */
  float(field: number, v: number): this {
    this.#tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    for (const x of b) this.#byte(x);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  bytes(field: number, data: Uint8Array): this {
    this.#tag(field, WIRE_LEN);
    this.#varint(data.byteLength);
    if (data.byteLength < 256) {
      for (const x of data) this.#byte(x);
    } else {
      this.#flush();
      this.chunks.push(data);
      this.length += data.byteLength;
    }
    return this;
  }

  /** embedded message field (its chunks are appended, not copied) */
  message(field: number, m: ProtoWriter): this {
    m.#flush();
    this.#tag(field, WIRE_LEN);
    this.#varint(m.length);
    this.#flush();
    for (const c of m.chunks) this.chunks.push(c);
    this.length += m.length;
    return this;
  }

  finish(): Uint8Array[] {
    this.#flush();
    return this.chunks;
  }
}

// onnx.proto field numbers
const MODEL = { irVersion: 1, producerName: 2, producerVersion: 3, graph: 7, opsetImport: 8 } as const;
const OPSET_ID = { domain: 1, version: 2 } as const;
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 } as const;
const ATTR = { name: 1, f: 2, i: 3, ints: 8, type: 20 } as const;
const ATTR_TYPE = { FLOAT: 1, INT: 2, INTS: 7 } as const;
const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9 } as const;
const DTYPE_FLOAT = 1;
const VALUE_INFO = { name: 1, type: 2 } as const;
const TYPE = { tensorType: 1 } as const;
const TYPE_TENSOR = { elemType: 1, shape: 2 } as const;
const SHAPE = { dim: 1 } as const;
const DIM = { value: 1, param: 2 } as const;

type Attr = { name: string } & ({ f: number } | { i: number } | { ints: readonly number[] });

function attribute(a: Attr): ProtoWriter {
  const w = new ProtoWriter().string(ATTR.name, a.name);
  if ('f' in a) w.float(ATTR.f, a.f).int(ATTR.type, ATTR_TYPE.FLOAT);
  else if ('i' in a) w.int(ATTR.i, a.i).int(ATTR.type, ATTR_TYPE.INT);
  else {
    for (const v of a.ints) w.int(ATTR.ints, v);
    w.int(ATTR.type, ATTR_TYPE.INTS);
  }
  return w;
}

function node(opType: string, name: string, inputs: readonly string[], outputs: readonly string[], attrs: readonly Attr[] = []): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of inputs) w.string(NODE.input, i);
  for (const o of outputs) w.string(NODE.output, o);
  w.string(NODE.name, name).string(NODE.opType, opType);
  for (const a of attrs) w.message(NODE.attribute, attribute(a));
  return w;
}

function float32Bytes(data: Float32Array): Uint8Array {
  if (endianness() === 'LE') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
  return out;
}

function initializer(name: string, shape: readonly number[], data: Float32Array): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of shape) w.int(TENSOR.dims, d);
  return w.int(TENSOR.dataType, DTYPE_FLOAT).string(TENSOR.name, name).bytes(TENSOR.rawData, float32Bytes(data));
}

function valueInfo(name: string, dims: readonly (number | string)[]): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of dims) shape.message(SHAPE.dim, typeof d === 'number' ? new ProtoWriter().int(DIM.value, d) : new ProtoWriter().string(DIM.param, d));
  const tensor = new ProtoWriter().int(TYPE_TENSOR.elemType, DTYPE_FLOAT).message(TYPE_TENSOR.shape, shape);
  return new ProtoWriter().string(VALUE_INFO.name, name).message(VALUE_INFO.type, new ProtoWriter().message(TYPE.tensorType, tensor));
}

/** The IR version that goes with an opset (onnx/helper.py's VERSION_TABLE). */
export function onnxIrVersion(opset: number): number {
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

// ---------------------------------------------------------------------------------------------
// The graph

function leaves(m: Module, prefix: string, out: [string, Module][]): [string, Module][] {
  if (m instanceof Sequential) {
    for (const [name, child] of m.namedChildren()) leaves(child, prefix === '' ? name : `${prefix}.${name}`, out);
  } else {
    out.push([prefix, m]);
  }
  return out;
}

interface Built {
  chunks: Uint8Array[];
  info: OnnxExportInfo;
}

/** The export options checked, with their defaults. */
interface ExportSettings {
  opset: number;
  irVersion: number;
  batchDim: number | string;
  size: number;
  graphName: string;
  softmax: boolean;
}

function exportSettings(model: AlexNet | Module, options: OnnxExportOptions): ExportSettings {
  const opset = options.opset ?? 13;
  if (!Number.isInteger(opset) || opset < 11 || opset > 21) throw alexnetError('ERR_ARGUMENT', `exportOnnx: opset must be an integer from 11 to 21, got ${String(opset)}`);
  const batch = options.batch ?? 'dynamic';
  if (batch !== 'dynamic' && !(Number.isInteger(batch) && batch >= 1)) {
    throw alexnetError('ERR_ARGUMENT', `exportOnnx: batch must be 'dynamic' or a positive integer, got ${String(batch)}`);
  }
  const size = options.inputSize ?? (model as Partial<AlexNet>).inputSize;
  if (!Number.isInteger(size) || size! < 1) throw alexnetError('ERR_ARGUMENT', 'exportOnnx: the input size is unknown (pass options.inputSize)');
  const config = (model as Partial<AlexNet>).config;
  return {
    opset,
    irVersion: onnxIrVersion(opset),
    batchDim: batch === 'dynamic' ? 'N' : batch,
    size: size!,
    graphName: options.graphName ?? (config ? `alexnet_${config}` : 'alexnet'),
    softmax: options.softmax ?? false,
  };
}

interface NodeSpec {
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Attr[];
}

/** The model's layers as a chain of ONNX nodes, each fed by the previous one, and their weights as initializers. */
class LayerChain {
  readonly specs: NodeSpec[] = [];
  readonly inits: ProtoWriter[] = [];
  parameters = 0;
  outFeatures: number | null = null;
  #current = 'input';

  async add(name: string, m: Module): Promise<void> {
    if (m instanceof Conv2d) {
      const [ph, pw] = m.padding;
      this.#emit('Conv', name, await this.#weighted(name, m), [
        { name: 'kernel_shape', ints: m.kernelSize },
        { name: 'strides', ints: m.stride },
        { name: 'pads', ints: [ph, pw, ph, pw] },
        { name: 'dilations', ints: [1, 1] },
        { name: 'group', i: m.groups },
      ]);
    } else if (m instanceof ReLU) {
      this.#emit('Relu', name, [this.#current]);
    } else if (m instanceof MaxPool2d) {
      const [ph, pw] = m.padding;
      const attrs: Attr[] = [
        { name: 'kernel_shape', ints: m.kernelSize },
        { name: 'strides', ints: m.stride },
      ];
      if (ph !== 0 || pw !== 0) attrs.push({ name: 'pads', ints: [ph, pw, ph, pw] });
      this.#emit('MaxPool', name, [this.#current], attrs);
    } else if (m instanceof LocalResponseNorm) {
      this.#emit('LRN', name, [this.#current], [
        { name: 'size', i: m.size },
        { name: 'alpha', f: m.alpha },
        { name: 'beta', f: m.beta },
        { name: 'bias', f: m.k },
      ]);
    } else if (m instanceof Flatten) {
      this.#emit('Flatten', name, [this.#current], [{ name: 'axis', i: 1 }]);
    } else if (m instanceof Linear) {
      this.#emit('Gemm', name, await this.#weighted(name, m), [
        { name: 'alpha', f: 1 },
        { name: 'beta', f: 1 },
        { name: 'transA', i: 0 },
        { name: 'transB', i: 1 },
      ]);
      this.outFeatures = m.outFeatures;
    } else if (m instanceof Dropout || m instanceof AdaptiveAvgPool2d) {
      // inference: the identity (AdaptiveAvgPool2d only exists as the identity case here)
    } else {
      throw alexnetError('ERR_ARGUMENT', `exportOnnx: layer '${name}' (${m.constructor.name}) has no ONNX mapping`);
    }
  }

  /** The inputs of a Conv or Gemm node: the previous output, the weight and the bias (as initializers). */
  async #weighted(name: string, m: Conv2d | Linear): Promise<string[]> {
    const inputs = [this.#current, await this.#init(`${name}.weight`, m.weight)];
    if (m.bias) inputs.push(await this.#init(`${name}.bias`, m.bias));
    return inputs;
  }

  async #init(name: string, t: { shape: readonly number[]; data: { data(): Promise<unknown> } }): Promise<string> {
    const host = (await t.data.data()) as Float32Array;
    this.inits.push(initializer(name, t.shape, host));
    this.parameters += host.length;
    return name;
  }

  #emit(op: string, name: string, inputs: string[], attrs: Attr[] = []): void {
    const out = `${name}.out`;
    this.specs.push({ op, name, inputs, outputs: [out], attrs });
    this.#current = out;
  }
}

/**
 * The graph's outputs: the last node (a Gemm) writes 'logits'; with `softmax`, a Softmax node
 * adds 'probabilities'.
 */
function graphOutputs(chain: LayerChain, s: ExportSettings): ProtoWriter[] {
  if (chain.outFeatures === null) throw alexnetError('ERR_ARGUMENT', 'exportOnnx: the model has no Linear layer (its output size is unknown)');
  const last = chain.specs.at(-1)!;
  if (last.op !== 'Gemm') throw alexnetError('ERR_ARGUMENT', `exportOnnx: the model must end in a Linear layer, not ${last.op}`);
  last.outputs = ['logits'];
  const outputs: ProtoWriter[] = [valueInfo('logits', [s.batchDim, chain.outFeatures])];
  if (s.softmax) {
    chain.specs.push({ op: 'Softmax', name: 'softmax', inputs: ['logits'], outputs: ['probabilities'], attrs: [{ name: 'axis', i: 1 }] });
    outputs.push(valueInfo('probabilities', [s.batchDim, chain.outFeatures]));
  }
  return outputs;
}

/** The ModelProto around the graph: nodes, name, initializers, input, outputs; IR version and opset. */
function modelProto(chain: LayerChain, outputs: readonly ProtoWriter[], s: ExportSettings): ProtoWriter {
  const graph = new ProtoWriter();
  for (const n of chain.specs) graph.message(GRAPH.node, node(n.op, n.name, n.inputs, n.outputs, n.attrs));
  graph.string(GRAPH.name, s.graphName);
  for (const i of chain.inits) graph.message(GRAPH.initializer, i);
  graph.message(GRAPH.input, valueInfo('input', [s.batchDim, 3, s.size, s.size]));
  for (const o of outputs) graph.message(GRAPH.output, o);
  return new ProtoWriter()
    .int(MODEL.irVersion, s.irVersion)
    .string(MODEL.producerName, 'alexnet-node')
    .string(MODEL.producerVersion, '0.1.0')
    .message(MODEL.graph, graph)
    .message(MODEL.opsetImport, new ProtoWriter().string(OPSET_ID.domain, '').int(OPSET_ID.version, s.opset));
}

async function build(model: AlexNet | Module, options: OnnxExportOptions): Promise<Built> {
  const s = exportSettings(model, options);
  const chain = new LayerChain();
  for (const [name, m] of leaves(model as Module, '', [])) await chain.add(name, m);
  const proto = modelProto(chain, graphOutputs(chain, s), s);
  const chunks = proto.finish();
  return { chunks, info: { opset: s.opset, irVersion: s.irVersion, nodes: chain.specs.map((n) => n.op), initializers: chain.inits.length, parameters: chain.parameters, bytes: proto.length } };
}

/** The ONNX ModelProto of a model as bytes (see the file comment for the graph). */
export async function encodeOnnx(model: AlexNet | Module, options: OnnxExportOptions = {}): Promise<Uint8Array> {
  const { chunks, info } = await build(model, options);
  const out = new Uint8Array(info.bytes);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Writes a model as an ONNX file, atomically and durably (src/io/atomic.ts, the writer
 * checkpoints use: the file at `outPath` is the old one or the whole new one, never a partial
 * one; a failure is an ERR_CHECKPOINT error naming the path). Put the model in eval mode first if
 * it matters to you: the graph is the inference graph either way (no Dropout).
 */
export async function exportOnnx(model: AlexNet | Module, outPath: string, options: OnnxExportOptions = {}): Promise<OnnxExportInfo> {
  const { chunks, info } = await build(model, options);
  await writeFileAtomic(outPath, chunks, { what: 'the ONNX file', noun: 'ONNX file' });
  return info;
}
