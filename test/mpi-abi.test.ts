// The Open MPI run-time binding (native/dist):
//  * scripts/check-mpi-abi.sh compiles our declarations (native/dist/mpi_api.h) against the real
//    mpi.h and runs the result against libmpi (constants, handle and function types, the
//    predefined objects' addresses, MPI_IN_PLACE, the soname); a copy with a declaration broken
//    on purpose must fail, naming it. Skipped, saying so, only where mpicc / mpi.h are absent.
//  * the loader (one search per process, so each case runs in a child process): honours
//    ALEXNET_MPI_LIBRARY as the only place, reports every place looked, rejects impostors (not
//    Open MPI, missing functions) with a reason, finds the real library where it is installed,
//    and never initialises MPI; `alexnet info` reports it.
//  * initDistributed's choice of world from the environment (no mpirun needed).
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const bin = join(__dirname, '..', 'bin', 'alexnet.js');
const which = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const hasMpicc = which('mpicc') && spawnSync('mpicc', ['--showme:link']).status === 0;
const tmp = mkdtempSync(join(tmpdir(), 'alexnet-mpi-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Our function and object lists, read from our header (what the check must cover).
const header = readFileSync(join(__dirname, '..', 'native', 'dist', 'mpi_api.h'), 'utf8');
const functions = [...header.matchAll(/^ {2}X\((MPI_\w+)\)/gm)].map((m) => m[1]!);
const objects = [...header.matchAll(/^ {2}X\(\w+, MPI_\w+, (ompi_mpi_\w+), (MPI_\w+)\)/gm)].map((m) => [m[1]!, m[2]!]);

function checkAbi(env: Record<string, string> = {}) {
  return spawnSync('bash', ['scripts/check-mpi-abi.sh'], { encoding: 'utf8', env: { ...process.env, ...env }, cwd: join(__dirname, '..') });
}

/** Runs `code` (an ES module body with `native` = the addon) in a child with `env` added. */
function child(code: string, env: Record<string, string | undefined> = {}) {
  const script = `import { loadNative } from ${JSON.stringify(join(__dirname, '..', 'dist', 'native.js'))};\nconst native = loadNative();\n${code}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  expect(r.status, `child failed: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('scripts/check-mpi-abi.sh', () => {
  it('says SKIP with the reason where mpicc is absent', () => {
    const r = checkAbi({ ALEXNET_MPICC: 'alexnet-no-such-mpicc' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^mpi-abi: SKIP: alexnet-no-such-mpicc not found/m);
  });

  it.skipIf(!hasMpicc)('our declarations match the real mpi.h and libmpi (needs libopenmpi-dev: mpicc)', () => {
    const r = checkAbi();
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^mpi-abi: OK \d+ items \(Open MPI [45]\.\d+\.\d+ headers\)/m);
    expect(functions.length).toBeGreaterThanOrEqual(16);
    for (const f of functions) expect(r.stdout).toContain(`abi_item function ${f}\n`);
    expect(objects.length).toBe(6);
    for (const [global, macro] of objects) expect(r.stdout).toContain(`abi_item object ${macro} = &${global}\n`);
    expect(r.stdout).toMatch(/abi_item soname libmpi\.so\.40/);
  });

  it.skipIf(!hasMpicc)('fails, naming the item, on a wrong constant or a wrong function type', () => {
    const dir = join(tmp, 'broken');
    execFileSync('mkdir', ['-p', dir]);
    copyFileSync(join(__dirname, '..', 'native', 'dist', 'abi_check.cc'), join(dir, 'abi_check.cc'));
    const broken = header
      .replace('MPI_THREAD_SERIALIZED = 2;', 'MPI_THREAD_SERIALIZED = 3;')
      .replace('MPI_Datatype datatype, int root,', 'MPI_Datatype datatype, long root,');
    expect(broken).not.toBe(header);
    writeFileSync(join(dir, 'mpi_api.h'), broken);
    const r = checkAbi({ ALEXNET_MPI_ABI_SOURCE: join(dir, 'abi_check.cc') });
    expect(r.status).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/constant differs from mpi.h: MPI_THREAD_SERIALIZED/);
    expect(out).toMatch(/function type differs from mpi.h: MPI_Bcast/);
    expect(out).not.toMatch(/differs from mpi.h: MPI_Allreduce/);
    expect(out).toMatch(/^mpi-abi: MISMATCH/m);
  });
});

describe('the Open MPI loader', () => {
  it('ALEXNET_MPI_LIBRARY pointing nowhere: not found, the only place tried, the reason names it; info says so', () => {
    const lib = child('console.log(JSON.stringify(native.mpiLibrary()));', { ALEXNET_MPI_LIBRARY: '/nonexistent' });
    expect(lib.found).toBe(false);
    expect(lib.searched).toEqual(['ALEXNET_MPI_LIBRARY: /nonexistent: no such file']);
    expect(lib.reason).toMatch(/libmpi\.so\.40/);
    expect(lib.reason).toMatch(/MPICH's ABI differs/);
    expect(lib.reason).toContain('ALEXNET_MPI_LIBRARY: /nonexistent: no such file');
    const env = { ...process.env, ALEXNET_MPI_LIBRARY: '/nonexistent' };
    const json = JSON.parse(execFileSync(process.execPath, [bin, 'info', '--json'], { encoding: 'utf8', env }));
    expect(json.mpi.found).toBe(false);
    expect(json.mpi.reason).toBe(lib.reason);
    const plain = execFileSync(process.execPath, [bin, 'info'], { encoding: 'utf8', env });
    expect(plain).toMatch(/^mpi {5}not found: Open MPI \(libmpi\.so\.40/m);
  });

  it('rejects a library that is not Open MPI (no ompi_mpi_* objects), and one missing functions', () => {
    // not Open MPI: the C math library under the name libmpi.so.40, given as a folder
    const impostor = join(tmp, 'impostor');
    execFileSync('mkdir', ['-p', impostor]);
    const libm = ['/lib/x86_64-linux-gnu/libm.so.6', '/usr/lib/x86_64-linux-gnu/libm.so.6', '/lib64/libm.so.6', '/lib/aarch64-linux-gnu/libm.so.6'].find(existsSync);
    expect(libm, 'no libm.so.6 to disguise').toBeDefined();
    copyFileSync(libm!, join(impostor, 'libmpi.so.40'));
    const a = child('console.log(JSON.stringify(native.mpiLibrary()));', { ALEXNET_MPI_LIBRARY: impostor });
    expect(a.found).toBe(false);
    expect(a.searched).toHaveLength(1);
    expect(a.searched[0]).toMatch(/^ALEXNET_MPI_LIBRARY: .*impostor\/libmpi\.so\.40: not Open MPI: it exports none of the ompi_mpi_\* predefined objects/);
    // Open MPI's objects but only one function: the missing ones are listed
    const partial = join(tmp, 'partial');
    execFileSync('mkdir', ['-p', partial]);
    const src = join(partial, 'fake.c');
    writeFileSync(src, objects.map(([g]) => `int ${g}[64];`).join('\n') + '\nint MPI_Init_thread(int* a, char*** b, int r, int* p) { return 0; }\n');
    execFileSync('cc', ['-shared', '-fPIC', '-o', join(partial, 'libmpi.so.40'), src]);
    const b = child('console.log(JSON.stringify(native.mpiLibrary()));', { ALEXNET_MPI_LIBRARY: join(partial, 'libmpi.so.40') });
    expect(b.found).toBe(false);
    expect(b.searched[0]).toMatch(/missing symbols: MPI_Initialized MPI_Finalized/);
    expect(b.searched[0]).not.toMatch(/missing symbols:.*MPI_Init_thread/);
    for (const f of functions.filter((f) => f !== 'MPI_Init_thread')) expect(b.searched[0]).toContain(f);
  });

  const real = child('console.log(JSON.stringify(native.mpiLibrary()));', { ALEXNET_MPI_LIBRARY: undefined });
  it.skipIf(!real.found)('finds the installed Open MPI by the loader\'s default search and through ALEXNET_MPI_LIBRARY (needs libopenmpi)', () => {
    expect(real.path).toMatch(/libmpi\.so\.40$/);
    expect(real.version).toMatch(/^Open MPI v[45]\.\d+/);
    expect(real.reason).toBe('');
    expect(real.searched[real.searched.length - 1]).toMatch(/: loaded$/);
    const viaFolder = child('console.log(JSON.stringify(native.mpiLibrary()));', { ALEXNET_MPI_LIBRARY: dirname(real.path) });
    expect(viaFolder.found).toBe(true);
    expect(viaFolder.version).toBe(real.version);
    // loading is not initialising: the world stays uninitialised
    const w = child('native.mpiLibrary(); console.log(JSON.stringify(native.distWorld()));', {});
    expect(w.kind).toBe('uninitialized');
  });
});

describe('initDistributed: which world', () => {
  const initCode = `try { await native.distInit(); console.log(JSON.stringify(native.distWorld())); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const clean = { OMPI_COMM_WORLD_SIZE: undefined, OMPI_COMM_WORLD_RANK: undefined, PMI_SIZE: undefined, PMIX_RANK: undefined };

  it('not launched under mpirun: a world of one, even without MPI', () => {
    const w = child(initCode, { ...clean, ALEXNET_MPI_LIBRARY: '/nonexistent' });
    expect(w).toMatchObject({ kind: 'single', rank: 0, worldSize: 1, localRank: 0, localSize: 1, library: '' });
    expect(w.reason).toMatch(/not launched under Open MPI's mpirun \(OMPI_COMM_WORLD_SIZE unset\)/);
  });

  it('launched under mpirun (OMPI_COMM_WORLD_SIZE) without a loadable libmpi: ERR_DIST naming where it looked', () => {
    const e = child(initCode, { ...clean, OMPI_COMM_WORLD_SIZE: '2', ALEXNET_MPI_LIBRARY: '/nonexistent' });
    expect(e.code).toBe('ERR_DIST');
    expect(e.message).toMatch(/launched under mpirun \(OMPI_COMM_WORLD_SIZE=2\) but MPI cannot be loaded: .*ALEXNET_MPI_LIBRARY: \/nonexistent: no such file/);
  });

  it('launched by another launcher (MPICH\'s PMI_SIZE): ERR_DIST, MPICH is not supported', () => {
    const e = child(initCode, { ...clean, PMI_SIZE: '2' });
    expect(e.code).toBe('ERR_DIST');
    expect(e.message).toMatch(/only Open MPI \(libmpi\.so\.40\) is supported: MPICH's ABI differs/);
  });
});
