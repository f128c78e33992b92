// The safetensors format (https://github.com/huggingface/safetensors), read and written without
// dependencies:
//
//   [8 bytes]  N, little-endian u64: length of the header
//   [N bytes]  UTF-8 JSON object: { "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
//              ..., "__metadata__": {"<key>": "<string>", ...} }, padded with spaces (we pad to a
//              multiple of 8 so the data starts 8-byte aligned, as the Python writer does)
//   [rest]     the data region: each tensor's bytes, row-major, little-endian, at [b, e) relative
//              to the byte after the header. The tensors cover the region exactly: no overlaps,
//              no holes, nothing after the last one (as the reference implementation checks).
//
// Reading validates the header before allocating anything for the data, so a truncated or
// hostile file is an ERR_CHECKPOINT error naming the file and the problem, never a crash or a
// huge allocation: the header is capped at 100 MB (the reference's limit) and each tensor's size
// is checked against the file's real size before its bytes are read. Duplicate JSON keys (which
// JSON.parse would silently resolve to the last one) are rejected.
//
// Only regular files are read: the file is opened with O_NONBLOCK (so a FIFO cannot block the
// open) and fstat-ed; a FIFO, socket, device or directory is an ERR_CHECKPOINT error.
//
// Checksums: the writer stores a CRC-32 (IEEE, zlib's) of each tensor's bytes in the metadata,
// under the key `alexnet.crc32` (a JSON object {tensorName: "8 hex digits"}). The reader verifies
// each tensor against it and names the tensor whose bytes changed (`verify: false` skips the
// check; zlib.crc32 ran at 3-4 GB/s on our 2-core build machine, under 0.1 s for the seed
// network's checkpoint); the key is removed from the metadata it returns. A file
// without the key (written before checksums existed, or by another tool) loads unverified
// (`checksums: 'absent'` in the result). Other tools ignore the key, as the format allows.
//
// Writing is atomic and durable, through src/io/atomic.ts (temporary file, fsync, rename, fsync
// of the folder; symlinks written through; stale temporaries of killed writers removed).
import { constants as fsConstants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { endianness } from 'node:os';
import { writeFileAtomic } from './atomic.js';
import { checkpointError } from './errors.js';

export { removeStaleTemporaries } from './atomic.js';

/** The dtypes this reader understands (sub-byte float formats are not supported). */
export type SafetensorsDType =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'F64'
  | 'I64'
  | 'U64';

/** The typed array a dtype is read into. F16/BF16 come back as their raw 16-bit patterns. */
export type SafetensorsArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

type ArrayCtor = { new (n: number): SafetensorsArray; readonly BYTES_PER_ELEMENT: number };

const DTYPES: Readonly<Record<SafetensorsDType, ArrayCtor>> = {
  BOOL: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  F8_E5M2: Uint8Array,
  F8_E4M3: Uint8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  F32: Float32Array,
  F64: Float64Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
};

/** Bytes per element of a dtype. */
export function dtypeItemSize(dtype: SafetensorsDType): number {
  return DTYPES[dtype].BYTES_PER_ELEMENT;
}

function isDType(x: unknown): x is SafetensorsDType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, x);
}

/** One tensor to write. `data` must be the typed array of `dtype` (Float32Array for F32, ...). */
export interface SafetensorsInput {
  dtype: 'F32' | 'I32' | SafetensorsDType;
  shape: readonly number[];
  data: SafetensorsArray;
}

/** One tensor read back: a fresh copy of its data. */
export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsArray;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsTensor>;
  /** The metadata strings (without the checksum key, which the reader consumes). */
  metadata: Record<string, string>;
  /**
   * 'verified': every tensor matched its stored CRC-32; 'absent': the file has no checksums (so
   * nothing was verified); 'skipped': checksums present but `verify: false`.
   */
  checksums: 'verified' | 'absent' | 'skipped';
}

/** A tensor's header entry, as `inspect` sees it before any data is read. */
export interface SafetensorsHeaderEntry {
  dtype: SafetensorsDType;
  shape: readonly number[];
  /** Bytes of data. */
  bytes: number;
}

export interface ReadSafetensorsOptions {
  /** Verify the stored CRC-32 of each tensor (default true). */
  verify?: boolean;
  /**
   * Called with the validated header (tensor entries and metadata, checksum key removed) before
   * any tensor data is read or allocated; throw to refuse the file (nothing big was allocated).
   */
  inspect?: (entries: ReadonlyMap<string, SafetensorsHeaderEntry>, metadata: Readonly<Record<string, string>>) => void;
}

export interface WriteSafetensorsOptions {
  /**
   * Testing aid: the write fails (as a full disk or a crash would) after this many bytes have
   * gone to the temporary file. The file at `path` is left untouched.
   */
  failAfterBytes?: number;
}

/** The reference implementation's cap on the header size. */
export const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
/** The metadata key of the per-tensor CRC-32s. */
export const CHECKSUM_KEY = 'alexnet.crc32';
const CHUNK = 64 * 1024 * 1024;

// CRC-32 (IEEE 802.3, reflected, as zlib and PNG compute it). zlib.crc32 exists from Node
// 20.15 / 22.2; the table fallback keeps older runtimes working (slower, about 0.3 GB/s).
let crcTable: Uint32Array | undefined;
function crc32Fallback(bytes: Uint8Array, crc: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~crc;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
const nativeCrc32 = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `bytes`, continuing from `crc` (0 to start). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  return nativeCrc32 ? nativeCrc32(bytes, crc) >>> 0 : crc32Fallback(bytes, crc);
}

function crcHex(bytes: Uint8Array): string {
  // In chunks, so a big tensor is not one long native call (no reason beyond keeping it tidy).
  let c = 0;
  for (let at = 0; at < bytes.length; at += CHUNK) c = crc32(bytes.subarray(at, Math.min(bytes.length, at + CHUNK)), c);
  return c.toString(16).padStart(8, '0');
}

function requireLittleEndianHost(): void {
  if (endianness() !== 'LE') throw checkpointError('safetensors: big-endian hosts are not supported');
}

function describe(x: unknown): string {
  try {
    const s = JSON.stringify(x);
    return s === undefined ? String(x) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(x);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Validates the inputs and builds the header (padded to a multiple of 8 bytes). */
function buildHeader(
  where: string,
  tensors: Readonly<Record<string, SafetensorsInput>>,
  metadata: Readonly<Record<string, string>>,
): { header: Buffer; names: string[]; dataBytes: number } {
  const names = Object.keys(tensors).sort();
  const parts: string[] = [];
  if (Object.prototype.hasOwnProperty.call(metadata, CHECKSUM_KEY)) throw checkpointError(`${where}: metadata key '${CHECKSUM_KEY}' is reserved for the checksums`);
  const withSums: Record<string, string> = { ...metadata };
  if (names.length > 0) {
    const sums: Record<string, string> = {};
    for (const name of names) {
      const d = tensors[name]?.data;
      // Unchecked inputs are refused below with a clear message; hash only real typed arrays.
      sums[name] = ArrayBuffer.isView(d) ? crcHex(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)) : '';
    }
    withSums[CHECKSUM_KEY] = JSON.stringify(sums);
  }
  const metaKeys = Object.keys(withSums).sort();
  if (metaKeys.length > 0) {
    const entries = metaKeys.map((k) => {
      const v = withSums[k];
      if (typeof v !== 'string') throw checkpointError(`${where}: metadata '${k}' must be a string, got ${typeof v}`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${entries.join(',')}}`);
  }
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY || name.length === 0) throw checkpointError(`${where}: '${name}' is not a valid tensor name`);
    const t = tensors[name]!;
    if (!isDType(t.dtype)) throw checkpointError(`${where}: tensor '${name}': unknown dtype '${String(t.dtype)}'`);
    const ctor = DTYPES[t.dtype];
    if (!(t.data instanceof ctor)) {
      throw checkpointError(`${where}: tensor '${name}': dtype ${t.dtype} needs a ${ctor.name}, got ${t.data?.constructor?.name ?? typeof t.data}`);
    }
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw checkpointError(`${where}: tensor '${name}': shape must be an array of non-negative integers, got ${describe(t.shape)}`);
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) {
      throw checkpointError(`${where}: tensor '${name}': shape [${t.shape.join(', ')}] holds ${numel} elements but data has ${t.data.length}`);
    }
    const end = offset + t.data.byteLength;
    parts.push(`${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) throw checkpointError(`${where}: header of ${padded} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const header = Buffer.alloc(8 + padded, 0x20);
  header.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(header, 8);
  return { header, names, dataBytes: offset };
}

function bytesOf(a: SafetensorsArray): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** The whole file in memory (for small files and tests; `writeSafetensors` streams). */
export function serializeSafetensors(
  tensors: Readonly<Record<string, SafetensorsInput>>,
  metadata: Readonly<Record<string, string>> = {},
): Buffer {
  requireLittleEndianHost();
  const { header, names } = buildHeader('serializeSafetensors', tensors, metadata);
  return Buffer.concat([header, ...names.map((n) => bytesOf(tensors[n]!.data))]);
}

/**
 * Writes `tensors` and `metadata` to `path` as a safetensors file, atomically. Keys are sorted,
 * the data is laid out in key order, and the header is padded to 8-byte alignment. A CRC-32 of
 * each tensor goes into the metadata (see the file comment). A symlink at `path` is written
 * through (its target is replaced); stale temporaries of earlier killed writes are removed.
 */
export async function writeSafetensors(
  path: string,
  tensors: Readonly<Record<string, SafetensorsInput>>,
  metadata: Readonly<Record<string, string>> = {},
  options: WriteSafetensorsOptions = {},
): Promise<void> {
  requireLittleEndianHost();
  const { header, names } = buildHeader(path, tensors, metadata);
  await writeFileAtomic(path, [header, ...names.map((n) => bytesOf(tensors[n]!.data))], {
    what: 'the safetensors file',
    noun: 'checkpoint',
    ...(options.failAfterBytes !== undefined ? { failAfterBytes: options.failAfterBytes } : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// Reading

interface Entry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * The first key that appears twice in one object of a JSON text that JSON.parse accepted, or
 * undefined. A light scan: strings, object/array nesting and commas are all it needs to track.
 */
function findDuplicateKey(text: string): string | undefined {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (top && expectKey) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (top.has(key)) return key;
        top.add(key);
        expectKey = false;
      }
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] != null;
    }
  }
  return undefined;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Parses and validates the header against the size of the data region that follows it. */
function parseHeader(where: string, headerBytes: Uint8Array, dataBytes: number): { entries: Entry[]; metadata: Record<string, string>; sums: Map<string, number> | null } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw checkpointError(`${where}: the header is not valid UTF-8`);
  }
  if (!text.startsWith('{')) throw checkpointError(`${where}: the header does not start with '{' (not a safetensors file?)`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw checkpointError(`${where}: the header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) throw checkpointError(`${where}: the header is not a JSON object`);
  const dup = findDuplicateKey(text);
  if (dup !== undefined) throw checkpointError(`${where}: the header has the key '${dup}' more than once`);

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      if (info === null) continue;
      if (!isPlainObject(info)) throw checkpointError(`${where}: __metadata__ must be an object of strings, got ${describe(info)}`);
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') throw checkpointError(`${where}: __metadata__ '${k}' must be a string, got ${describe(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const t = `${where}: tensor '${name}'`;
    if (!isPlainObject(info)) throw checkpointError(`${t}: the entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (!isDType(dtype)) throw checkpointError(`${t}: unknown dtype ${describe(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw checkpointError(`${t}: shape must be an array of non-negative integers, got ${describe(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
      throw checkpointError(`${t}: data_offsets must be two non-negative integers, got ${describe(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) throw checkpointError(`${t}: data_offsets [${begin}, ${end}] begin after they end`);
    if (end > dataBytes) {
      throw checkpointError(`${t}: data_offsets [${begin}, ${end}] run past the end of the ${dataBytes}-byte data region (file truncated?)`);
    }
    // The element count, stopping once it exceeds what the offsets hold (so no overflow).
    const size = dtypeItemSize(dtype);
    const dims = shape as number[];
    const fits = (end - begin) / size;
    let numel = dims.includes(0) ? 0 : 1;
    for (let i = 0; numel !== 0 && i < dims.length && numel <= fits; i++) numel *= dims[i]!;
    if (numel !== fits) {
      const need = numel > fits ? `more than ${end - begin}` : `${numel * size}`;
      throw checkpointError(`${t}: shape [${dims.join(', ')}] of ${dtype} needs ${need} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }

  // The tensors must tile the data region exactly (as the reference implementation requires).
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < at) throw checkpointError(`${where}: tensors '${prev!.name}' and '${e.name}' overlap (bytes ${e.begin}..${at})`);
    if (e.begin > at) throw checkpointError(`${where}: bytes ${at}..${e.begin} of the data region belong to no tensor (a hole before '${e.name}')`);
    at = e.end;
    prev = e;
  }
  if (at !== dataBytes) {
    throw checkpointError(`${where}: the data region is ${dataBytes} bytes but the tensors cover ${at}; ${dataBytes - at} trailing bytes belong to no tensor`);
  }
  return { entries, metadata, sums: takeChecksums(where, metadata, entries) };
}

/** Removes the checksum key from `metadata` and validates it: one 8-hex CRC per tensor. */
function takeChecksums(where: string, metadata: Record<string, string>, entries: readonly Entry[]): Map<string, number> | null {
  const text = metadata[CHECKSUM_KEY];
  if (text === undefined) return null;
  delete metadata[CHECKSUM_KEY];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw checkpointError(`${where}: __metadata__ '${CHECKSUM_KEY}' is not valid JSON (corrupt header?)`);
  }
  if (!isPlainObject(json)) throw checkpointError(`${where}: __metadata__ '${CHECKSUM_KEY}' must be a JSON object of tensor name -> CRC-32`);
  const names = new Set(entries.map((e) => e.name));
  const sums = new Map<string, number>();
  for (const [name, v] of Object.entries(json)) {
    if (!names.has(name)) throw checkpointError(`${where}: __metadata__ '${CHECKSUM_KEY}' has a checksum for '${describe(name)}', which is not a tensor of the file`);
    if (typeof v !== 'string' || !/^[0-9a-f]{8}$/.test(v)) throw checkpointError(`${where}: tensor '${name}': checksum ${describe(v)} is not 8 hex digits`);
    sums.set(name, parseInt(v, 16));
  }
  for (const e of entries) if (!sums.has(e.name)) throw checkpointError(`${where}: tensor '${e.name}' has no checksum in '${CHECKSUM_KEY}' (the header was edited?)`);
  return sums;
}

function verifyTensor(where: string, name: string, bytes: Uint8Array, sums: Map<string, number> | null): void {
  if (sums === null) return;
  let c = 0;
  for (let at = 0; at < bytes.length; at += CHUNK) c = crc32(bytes.subarray(at, Math.min(bytes.length, at + CHUNK)), c);
  const want = sums.get(name)!;
  if (c !== want) {
    throw checkpointError(
      `${where}: tensor '${name}': checksum mismatch (stored crc32 ${want.toString(16).padStart(8, '0')}, data has ${c.toString(16).padStart(8, '0')}): ` +
        'its bytes changed after it was written (disk or copy corruption?)',
    );
  }
}

function runInspect(where: string, entries: readonly Entry[], metadata: Record<string, string>, options: ReadSafetensorsOptions): void {
  if (!options.inspect) return;
  const view = new Map<string, SafetensorsHeaderEntry>();
  for (const e of entries) view.set(e.name, { dtype: e.dtype, shape: [...e.shape], bytes: e.end - e.begin });
  try {
    options.inspect(view, { ...metadata });
  } catch (e) {
    // The caller's refusal goes out as the caller made it (a coded error keeps its code).
    throw new Refusal((e as { code?: unknown }).code !== undefined ? e : checkpointError(`${where}: ${(e as Error).message ?? String(e)}`, e));
  }
}

/** Carries an `inspect` refusal through the reader's error wrapping, unchanged. */
class Refusal {
  constructor(readonly error: unknown) {}
}

/** Reads the header length and checks it against the file size. */
function headerLength(where: string, lengthField: Uint8Array, fileBytes: number): number {
  const n = Buffer.from(lengthField.buffer, lengthField.byteOffset, 8).readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES)) throw checkpointError(`${where}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt file?)`);
  if (n > BigInt(fileBytes - 8)) {
    throw checkpointError(`${where}: header length ${n} exceeds the ${fileBytes - 8} bytes after the length field (file truncated?)`);
  }
  if (n < 2n) throw checkpointError(`${where}: header length ${n} is too small to hold a JSON object`);
  return Number(n);
}

/** Parses a safetensors file held in memory. The tensors are copies (aligned, independent). */
export function parseSafetensors(bytes: Uint8Array, name = '<buffer>', options: ReadSafetensorsOptions = {}): SafetensorsFile {
  requireLittleEndianHost();
  if (bytes.length < 8) throw checkpointError(`${name}: ${bytes.length} bytes is too short for a safetensors file (needs an 8-byte header length)`);
  const n = headerLength(name, bytes.subarray(0, 8), bytes.length);
  const dataBytes = bytes.length - 8 - n;
  const { entries, metadata, sums } = parseHeader(name, bytes.subarray(8, 8 + n), dataBytes);
  try {
    runInspect(name, entries, metadata, options);
  } catch (e) {
    throw e instanceof Refusal ? e.error : e;
  }
  const verify = options.verify !== false;
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    const data = new DTYPES[e.dtype]((e.end - e.begin) / dtypeItemSize(e.dtype));
    const raw = new Uint8Array(data.buffer);
    raw.set(bytes.subarray(8 + n + e.begin, 8 + n + e.end));
    if (verify) verifyTensor(name, e.name, raw, sums);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata, checksums: sums === null ? 'absent' : verify ? 'verified' : 'skipped' };
}

/**
 * Opens `path` for reading if it is a regular file. O_NONBLOCK makes opening a FIFO return at
 * once (a blocking open would wait forever for a writer); fstat then refuses anything that is
 * not a regular file. (O_NONBLOCK has no effect on reads of regular files.)
 */
export async function openRegularFile(path: string, errorOf: (message: string, cause?: unknown) => Error = checkpointError): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw errorOf(`${path}: cannot open (${code === 'ENXIO' ? 'a socket or device without a reader, not a regular file' : code ?? (e as Error).message})`, e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO (named pipe)' : st.isSocket() ? 'a socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'a special file';
      throw errorOf(`${path}: not a regular file (it is ${kind}); give the path of a file`);
    }
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
  return fh;
}

async function readExactly(fh: FileHandle, into: Uint8Array, position: number, where: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, Math.min(CHUNK, into.length - done), position + done);
    if (bytesRead === 0) throw checkpointError(`${where}: the file ended early at byte ${position + done} (was it truncated while being read?)`);
    done += bytesRead;
  }
}

/**
 * Reads a safetensors file (a path, or the file's bytes). Only the header is read before it is
 * validated; then each tensor's bytes are read into a fresh typed array of its dtype.
 */
export async function readSafetensors(source: string | Uint8Array, options: ReadSafetensorsOptions = {}): Promise<SafetensorsFile> {
  if (typeof source !== 'string') return parseSafetensors(source, '<buffer>', options);
  requireLittleEndianHost();
  const where = source;
  const fh = await openRegularFile(where);
  try {
    const st = await fh.stat();
    const size = st.size;
    if (size < 8) throw checkpointError(`${where}: ${size} bytes is too short for a safetensors file (needs an 8-byte header length)`);
    const lengthField = new Uint8Array(8);
    await readExactly(fh, lengthField, 0, where);
    const n = headerLength(where, lengthField, size);
    const headerBytes = new Uint8Array(n);
    await readExactly(fh, headerBytes, 8, where);
    const { entries, metadata, sums } = parseHeader(where, headerBytes, size - 8 - n);
    runInspect(where, entries, metadata, options);
    const verify = options.verify !== false;
    const tensors = new Map<string, SafetensorsTensor>();
    for (const e of [...entries].sort((a, b) => a.begin - b.begin)) {
      const data = new DTYPES[e.dtype]((e.end - e.begin) / dtypeItemSize(e.dtype));
      const raw = new Uint8Array(data.buffer);
      await readExactly(fh, raw, 8 + n + e.begin, where);
      if (verify) verifyTensor(where, e.name, raw, sums);
      tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
    }
    // Keep the header's order for the caller.
    const ordered = new Map<string, SafetensorsTensor>();
    for (const e of entries) ordered.set(e.name, tensors.get(e.name)!);
    return { tensors: ordered, metadata, checksums: sums === null ? 'absent' : verify ? 'verified' : 'skipped' };
  } catch (e) {
    if (e instanceof Refusal) throw e.error;
    if ((e as { code?: string }).code === 'ERR_CHECKPOINT') throw e;
    throw checkpointError(`${where}: reading failed (${(e as Error).message})`, e);
  } finally {
    await fh.close();
  }
}
