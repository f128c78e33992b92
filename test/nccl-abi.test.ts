// The NCCL run-time binding (native/dist/nccl_*):
//  * every number our own declarations compile to is pinned against literals COPIED BY HAND from
//    docs/nccl-abi.md (its section in each comment), never derived from our header;
//  * scripts/check-nccl-abi.sh compiles our declarations against the real nccl.h where one is
//    found (NCCL_INCLUDE, the toolkit, a wheel's nvidia/nccl/include) and loads the library beside
//    it; a copy with a declaration broken on purpose must fail, naming it. Skipped, saying so,
//    where there is no nccl.h (CI);
//  * the loader (one search per process, so each case runs in a child process): honours
//    ALEXNET_NCCL_PATH as the only place, reports every place looked, rejects impostors (not
//    NCCL, too old, missing functions) with a reason; `alexnet info` reports it. Where a real
//    libnccl.so.2 is found (ALEXNET_NCCL_PATH, or the default search), it is loaded for real:
//    ncclGetVersion needs no GPU.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative } from '../src/native.js';

const root = join(__dirname, '..');
const bin = join(root, 'bin', 'alexnet.js');
const tmp = mkdtempSync(join(tmpdir(), 'alexnet-nccl-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `code` (an ES module body with `native` = the addon) in a child with `env` added. */
function child(code: string, env: Record<string, string | undefined> = {}) {
  const script = `import { loadNative } from ${JSON.stringify(join(root, 'dist', 'native.js'))};\nconst native = loadNative();\n${code}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  expect(r.status, `child failed: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}
const library = (env: Record<string, string | undefined>) => child('console.log(JSON.stringify(native.ncclLibrary()));', env);

describe('our NCCL declarations (docs/nccl-abi.md)', () => {
  const abi = loadNative().ncclAbi();

  it('enumerators: the values of sections N2', () => {
    // §N2 ncclResult_t
    expect(abi.enums.ncclResult_t).toEqual({
      ncclSuccess: 0, ncclUnhandledCudaError: 1, ncclSystemError: 2, ncclInternalError: 3,
      ncclInvalidArgument: 4, ncclInvalidUsage: 5, ncclRemoteError: 6, ncclInProgress: 7,
    });
    // §N2 ncclRedOp_t
    expect(abi.enums.ncclRedOp_t).toEqual({ ncclSum: 0, ncclProd: 1, ncclMax: 2, ncclMin: 3, ncclAvg: 4 });
    // §N2 ncclDataType_t
    expect(abi.enums.ncclDataType_t).toEqual({
      ncclInt8: 0, ncclUint8: 1, ncclInt32: 2, ncclUint32: 3, ncclInt64: 4, ncclUint64: 5,
      ncclFloat16: 6, ncclFloat32: 7, ncclFloat64: 8,
    });
  });

  it('sizes and layout: section N1', () => {
    expect(abi.sizeof).toEqual({ ncclResult_t: 4, ncclRedOp_t: 4, ncclDataType_t: 4, ncclUniqueId: 128, ncclComm_t: 8, cudaStream_t: 8 });
    expect(abi.alignofUniqueId).toBe(1);
    expect(abi.signed).toEqual({ ncclResult_t: false, ncclRedOp_t: false, ncclDataType_t: false });
  });

  it('the functions the loader resolves: section N3, in order', () => {
    expect(abi.functions).toEqual([
      'ncclGetVersion', 'ncclGetUniqueId', 'ncclCommInitRank', 'ncclCommDestroy', 'ncclCommAbort',
      'ncclCommGetAsyncError', 'ncclGetErrorString', 'ncclAllReduce', 'ncclBroadcast',
    ]);
  });
});

function checkAbi(env: Record<string, string | undefined> = {}) {
  return spawnSync('bash', ['scripts/check-nccl-abi.sh'], { encoding: 'utf8', env: { ...process.env, ...env }, cwd: root });
}

describe('scripts/check-nccl-abi.sh', () => {
  const first = checkAbi();
  const hasHeader = first.status === 0 && /^nccl-abi: OK/m.test(first.stdout);

  it('says SKIP with where it looked when nccl.h is absent (NCCL_INCLUDE is then the only place)', () => {
    const r = checkAbi({ NCCL_INCLUDE: join(tmp, 'no-such-include') });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^nccl-abi: SKIP: nccl\.h not found \(looked in: .*no-such-include\)/m);
  });

  it('runs, or says why not', () => {
    expect(first.status, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^nccl-abi: (OK \d+ items \(NCCL 2\.\d+\.\d+ headers\)|SKIP: )/m);
  });

  it.skipIf(!hasHeader)('our declarations match the real nccl.h (needs nccl.h: set NCCL_INCLUDE)', () => {
    const abi = loadNative().ncclAbi();
    for (const f of abi.functions) expect(first.stdout).toContain(`abi_item function ${f}\n`);
    for (const [type, values] of Object.entries(abi.enums)) {
      expect(first.stdout).toContain(`abi_item enum ${type}\n`);
      for (const [name, value] of Object.entries(values)) expect(first.stdout).toContain(`abi_item enumerator ${name} = ${value}\n`);
    }
    expect(first.stdout).toContain('abi_item struct ncclUniqueId (128 bytes)');
  });

  it.skipIf(!hasHeader)('fails, naming the item, on a wrong enumerator or a wrong function type', () => {
    const dir = join(tmp, 'broken');
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(root, 'native', 'dist', 'nccl_abi_check.cc'), join(dir, 'nccl_abi_check.cc'));
    const header = readFileSync(join(root, 'native', 'dist', 'nccl_api.h'), 'utf8');
    const broken = header
      .replace('X(ncclAvg, 4)', 'X(ncclAvg, 5)')
      .replace('ncclDataType_t datatype, int root, ncclComm_t comm,', 'ncclDataType_t datatype, long root, ncclComm_t comm,');
    expect(broken).not.toBe(header);
    writeFileSync(join(dir, 'nccl_api.h'), broken);
    const r = checkAbi({ ALEXNET_NCCL_ABI_SOURCE: join(dir, 'nccl_abi_check.cc') });
    expect(r.status).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/value differs from nccl.h: ncclAvg/);
    expect(out).toMatch(/function type differs from nccl.h: ncclBroadcast/);
    expect(out).not.toMatch(/function type differs from nccl.h: ncclAllReduce/);
    expect(out).toMatch(/^nccl-abi: MISMATCH/m);
  });
});

describe('the NCCL loader', () => {
  it('ALEXNET_NCCL_PATH pointing nowhere: not found, the only place tried, the reason names it; info says so', () => {
    const lib = library({ ALEXNET_NCCL_PATH: '/nonexistent' });
    expect(lib.found).toBe(false);
    expect(lib.searched).toEqual(['ALEXNET_NCCL_PATH=/nonexistent (no such file or folder): absent']);
    expect(lib.reason).toMatch(/^NCCL 2 \(libnccl\.so\.2\) not found\. Looked in: ALEXNET_NCCL_PATH=\/nonexistent/);
    expect(lib.reason).toMatch(/Fix or unset ALEXNET_NCCL_PATH/);
    const env = { ...process.env, ALEXNET_NCCL_PATH: '/nonexistent' };
    const json = JSON.parse(execFileSync(process.execPath, [bin, 'info', '--json'], { encoding: 'utf8', env }));
    expect(json.nccl.found).toBe(false);
    expect(json.nccl.reason).toBe(lib.reason);
    const plain = execFileSync(process.execPath, [bin, 'info'], { encoding: 'utf8', env });
    expect(plain).toMatch(/^nccl {4}not found: NCCL 2 \(libnccl\.so\.2\) not found\. Looked in: ALEXNET_NCCL_PATH=\/nonexistent/m);
  });

  it('the default search names every kind of place it looked (loader path, toolkits, Python site-packages)', () => {
    const lib = library({ ALEXNET_NCCL_PATH: undefined, LD_LIBRARY_PATH: undefined, CUDA_HOME: join(tmp, 'no-cuda'), ALEXNET_PYTHON_SITE: undefined });
    expect(lib.searched[0]).toMatch(/^the dynamic loader's search path .*: (not found|loaded .*)$/);
    if (!lib.found) {
      expect(lib.searched).toContain(`$CUDA_HOME = ${join(tmp, 'no-cuda')} (no lib64 or lib folder)`);
      expect(lib.reason).toMatch(/nvidia\/nccl\/lib and nvidia\/cu13\/lib in \d+ Python site-packages|Python site-packages \(none found/);
      expect(lib.reason).toMatch(/pip install nvidia-nccl-cu12 or nvidia-nccl-cu13/);
    }
  });

  // where the system has NCCL on the loader's path, the search never reaches the site-packages
  const systemNccl = library({ ALEXNET_NCCL_PATH: undefined, LD_LIBRARY_PATH: undefined }).searched[0].includes(': loaded ');
  it.skipIf(systemNccl)('finds NCCL in a Python site-packages folder\'s nvidia/nccl/lib (the wheel layout)', () => {
    const site = join(tmp, 'site');
    const dir = join(site, 'nvidia', 'nccl', 'lib');
    mkdirSync(dir, { recursive: true });
    const fns = loadNative().ncclAbi().functions.filter((f) => f !== 'ncclGetVersion');
    writeFileSync(join(dir, 'fake.c'), 'int ncclGetVersion(int* v) { *v = 22104; return 0; }\n' + fns.map((f) => `int ${f}(void) { return 0; }`).join('\n') + '\n');
    execFileSync('cc', ['-shared', '-fPIC', '-o', join(dir, 'libnccl.so.2'), join(dir, 'fake.c')]);
    const lib = library({ ALEXNET_NCCL_PATH: undefined, ALEXNET_PYTHON_SITE: site, LD_LIBRARY_PATH: undefined, CUDA_HOME: undefined, CUDA_PATH: undefined });
    expect(lib.found).toBe(true);
    expect(lib.path).toBe(join(dir, 'libnccl.so.2'));
    expect(lib.versionString).toBe('2.21.4');
    expect(lib.chosen).toBe(`the first usable NCCL 2 in the search order: Python site-packages ${site}`);
    expect(lib.root).toBe(site);
  });

  it('rejects impostors: not NCCL, NCCL older than 2.10, NCCL missing functions', () => {
    // not NCCL: the C math library under the name libnccl.so.2, given as a folder
    const impostor = join(tmp, 'impostor');
    mkdirSync(impostor, { recursive: true });
    const libm = ['/lib/x86_64-linux-gnu/libm.so.6', '/usr/lib/x86_64-linux-gnu/libm.so.6', '/lib64/libm.so.6', '/lib/aarch64-linux-gnu/libm.so.6'].find(existsSync);
    expect(libm, 'no libm.so.6 to disguise').toBeDefined();
    copyFileSync(libm!, join(impostor, 'libnccl.so.2'));
    const a = library({ ALEXNET_NCCL_PATH: impostor });
    expect(a.found).toBe(false);
    expect(a.searched).toHaveLength(1);
    expect(a.searched[0]).toMatch(/^ALEXNET_NCCL_PATH=.*impostor: .*libnccl\.so\.2 is not NCCL: it has no symbol ncclGetVersion$/);
    expect(a.reason).toMatch(/not usable/);

    // NCCL 2.8.4 (the old version coding: 2804): too old for ncclAvg
    const old = join(tmp, 'old');
    mkdirSync(old, { recursive: true });
    writeFileSync(join(old, 'fake.c'), 'int ncclGetVersion(int* v) { *v = 2804; return 0; }\n');
    execFileSync('cc', ['-shared', '-fPIC', '-o', join(old, 'libnccl.so.2'), join(old, 'fake.c')]);
    const b = library({ ALEXNET_NCCL_PATH: join(old, 'libnccl.so.2') });
    expect(b.found).toBe(false);
    expect(b.version).toBe(2804);
    expect(b.versionString).toBe('2.8.4');
    expect(b.searched[0]).toMatch(/found NCCL 2\.8\.4 at .*old\/libnccl\.so\.2 \(ncclGetVersion\(\) = 2804\); NCCL 2\.10 or later \(and below 3\) is required/);

    // a recent version but only two functions: the missing ones are listed
    const partial = join(tmp, 'partial');
    mkdirSync(partial, { recursive: true });
    writeFileSync(join(partial, 'fake.c'), 'int ncclGetVersion(int* v) { *v = 22104; return 0; }\nint ncclAllReduce(void) { return 0; }\n');
    execFileSync('cc', ['-shared', '-fPIC', '-o', join(partial, 'libnccl.so.2'), join(partial, 'fake.c')]);
    const c = library({ ALEXNET_NCCL_PATH: partial });
    expect(c.found).toBe(false);
    expect(c.versionString).toBe('2.21.4');
    expect(c.searched[0]).toMatch(/NCCL 2\.21\.4 at .*partial\/libnccl\.so\.2 lacks symbols ncclGetUniqueId, ncclCommInitRank, ncclCommDestroy, ncclCommAbort, ncclCommGetAsyncError, ncclGetErrorString, ncclBroadcast$/);
    expect(c.searched[0]).not.toMatch(/ncclAllReduce/);
  });

  // A real libnccl.so.2: ALEXNET_NCCL_PATH when the environment sets it, else the default search.
  const real = library({});
  it.skipIf(!real.found)('loads a real libnccl.so.2 without a GPU: version, every function, info (needs NCCL: set ALEXNET_NCCL_PATH)', () => {
    expect(real.path).toMatch(/libnccl\.so\.2$/);
    expect(real.versionString).toMatch(/^2\.\d+\.\d+$/);
    expect(real.version).toBeGreaterThanOrEqual(21000);
    // the code and the string agree (§N0: X*10000 + Y*100 + Z from 2.9 on)
    const [x, y, z] = real.versionString.split('.').map(Number);
    expect(real.version).toBe(x * 10000 + y * 100 + z);
    expect(real.reason).toBe('');
    expect(real.chosen).not.toBe('');
    expect(real.searched[real.searched.length - 1]).toMatch(/: loaded .*libnccl\.so\.2 \(NCCL 2\.\d+\.\d+\)$/);
    const json = JSON.parse(execFileSync(process.execPath, [bin, 'info', '--json'], { encoding: 'utf8' }));
    expect(json.nccl).toMatchObject({ found: true, path: real.path, versionString: real.versionString });
    const plain = execFileSync(process.execPath, [bin, 'info'], { encoding: 'utf8' });
    expect(plain).toContain(`nccl    found: ${real.path} (NCCL ${real.versionString})`);
  });
});
