// The GPU check's NCCL step (scripts/gpu-check.sh, stage 1): collectives on a CUDA tensor through
// NCCL with world size 1 (the GPU machine has one GPU, and NCCL refuses two ranks on one device),
// compared with the same collectives through MPI on the CPU.
//
//   node scripts/gpu-nccl.mjs [--json FILE]
//
// Without a usable GPU it prints "nccl: skipped: no GPU (...)" and exits 0 (after running the
// comparison CPU against CPU, which rehearses everything but NCCL). With one, it needs
// libnccl.so.2 (ALEXNET_NCCL_PATH or the search of native/dist/nccl_loader.h: the PyTorch
// environment's nvidia/nccl/lib through ALEXNET_PYTHON_SITE), and runs the ranks' part in a child
// process: under `mpirun -n 1` when mpirun is on the PATH (a real MPI world of one: the NCCL id
// goes through the MPI path), else alone (a world of one without MPI). NCCL_DEBUG=VERSION makes
// NCCL print its version when the communicator is created: the proof that the NCCL path ran.
// The rank's part, on fresh random data: y = 2x + 1 on each device (CUDA operators before the
// collective, on the same stream), then allReduce 'sum', allReduce 'avg', another CUDA operator
// after them (y *= 0.5), and broadcast from rank 0 of a float32 and an int32 tensor; each result
// read back and compared with the CPU's (through MPI) and with a float64 reference. Prints one
// line ("nccl: ok: ..." or "nccl: FAILED: ...") and writes the details to --json.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const jsonAt = args.indexOf('--json');
const jsonFile = jsonAt >= 0 ? args[jsonAt + 1] : null;
const RANK = args.includes('--rank');
const devAt = args.indexOf('--device');
const DEVICE = devAt >= 0 ? args[devAt + 1] : 'cuda:0'; // 'cpu': the comparison alone, without a GPU
const { loadNative, initDistributed, Tensor, axpy, scale } = await import(join(here, '..', 'dist', 'index.js'));

function finish(result, line, code) {
  console.log(line);
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ ...result, line }, null, 2));
  process.exit(code);
}

if (RANK) {
  // ---- one rank: the collectives on cuda:0 (NCCL) and on the CPU (MPI), compared -------------
  const comm = await initDistributed();
  const n = (1 << 20) + 3; // not a multiple of anything NCCL likes
  let s = 0x9e3779b9 ^ Date.now();
  const rand = () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32) * 2 - 1;
  const x = Float32Array.from({ length: n }, rand);
  const k = Int32Array.from({ length: 4099 }, () => Math.floor(rand() * 1e6));
  const run = async (device) => {
    const t = Tensor.from(x, [n], { device });
    const ones = Tensor.from(new Float32Array(n).fill(1), [n], { device });
    scale(t, 2); // on the device's queue, before the collective
    axpy(t, 1, ones);
    comm.allReduce(t, 'sum');
    const afterSum = await t.data();
    comm.allReduce(t, 'avg');
    scale(t, 0.5); // after the collective, same queue
    const afterAvg = await t.data();
    const b = comm.broadcast(Tensor.from(x, [n], { device }), 0);
    const bi = comm.broadcast(Tensor.from(k, [k.length], { device, dtype: 'int32' }), 0);
    return { afterSum, afterAvg, bcast: await b.data(), bcastInt: await bi.data() };
  };
  const gpu = await run(DEVICE);
  const cpu = await run('cpu');
  const W = comm.worldSize;
  const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  // float64 references (every rank holds the same x here: world size 1, or identical seeds)
  const refSum = Float64Array.from(x, (v) => (2 * v + 1) * W);
  const refAvg = Float64Array.from(refSum, (v) => (v / W) * 0.5);
  const rel = (a, ref) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i]) / Math.max(1, Math.abs(ref[i]))), 0);
  const r = {
    rank: comm.rank, worldSize: W, backend: comm.backend, device: DEVICE, elements: n,
    gpuVsCpu: { sum: maxDiff(gpu.afterSum, cpu.afterSum), avg: maxDiff(gpu.afterAvg, cpu.afterAvg), broadcast: maxDiff(gpu.bcast, cpu.bcast), broadcastInt32: maxDiff(gpu.bcastInt, cpu.bcastInt) },
    gpuVsFloat64: { sum: rel(gpu.afterSum, refSum), avg: rel(gpu.afterAvg, refAvg) },
    broadcastIsRoots: maxDiff(gpu.bcast, x) === 0 && maxDiff(gpu.bcastInt, k) === 0,
  };
  await comm.barrier();
  console.log(`RESULT ${JSON.stringify(r)}`);
  await comm.finalize(); // before exit: a rank that ends without MPI_Finalize fails the mpirun job
  process.exit(0);
}

// ---- the driver ------------------------------------------------------------------------------
const native = loadNative();
const cuda = native.info().cuda;
const hasMpirun = spawnSync('sh', ['-c', 'command -v mpirun'], { encoding: 'utf8' }).status === 0 && native.mpiLibrary().found;
const world = hasMpirun ? 'mpirun -n 1' : 'a world of one (no mpirun)';
const root = typeof process.getuid === 'function' && process.getuid() === 0;
const self = fileURLToPath(import.meta.url);

/** Runs the rank's part on `device` (under mpirun -n 1 where it exists); its RESULT, or why not. */
function rank(device) {
  const cmd = hasMpirun
    ? ['mpirun', [...(root ? ['--allow-run-as-root'] : []), '-n', '1', '-x', 'NCCL_DEBUG', process.execPath, self, '--rank', '--device', device]]
    : [process.execPath, [self, '--rank', '--device', device]];
  const child = spawnSync(cmd[0], cmd[1], { encoding: 'utf8', env: { ...process.env, NCCL_DEBUG: 'VERSION' }, timeout: 120_000 });
  const output = `${child.stdout ?? ''}\n${child.stderr ?? ''}`;
  const line = output.split('\n').find((l) => l.startsWith('RESULT '));
  const error = child.status !== 0 || !line ? `the rank (${world}) exited ${child.status ?? child.signal}: ${output.trim().split('\n').slice(-3).join(' / ')}` : '';
  return { output, error, r: error ? null : JSON.parse(line.slice(7)) };
}

/** What is wrong with a rank's RESULT (nothing: []). */
function check(r) {
  const problems = [];
  if (hasMpirun && r.backend !== 'mpi') problems.push(`under mpirun the world is '${r.backend}', not 'mpi'`);
  for (const [k, v] of Object.entries(r.gpuVsCpu)) if (v !== 0) problems.push(`${k}: ${r.device} differs from the CPU (MPI) by ${v}`);
  for (const [k, v] of Object.entries(r.gpuVsFloat64)) if (!(v <= 1e-6)) problems.push(`${k}: relative error ${v} against the float64 reference`);
  if (!r.broadcastIsRoots) problems.push('broadcast did not leave the root\'s contents');
  return problems;
}

if (!cuda.available) {
  // no GPU: the step is skipped; the comparison itself still runs, CPU against CPU (the rehearsal)
  const why = `nccl: skipped: no GPU (CUDA unavailable: ${String(cuda.reason).split('\n')[0]})`;
  const { error, r } = rank('cpu');
  const problems = error ? [error] : check(r);
  finish({ skipped: true, reason: cuda.reason, world, rehearsal: r, problems },
    `${why}; the comparison ran CPU against CPU (${world}): ${problems.length ? `FAILED: ${problems.join('; ')}` : 'ok'}`, problems.length ? 1 : 0);
}
const nccl = native.ncclLibrary();
if (!nccl.found) finish({ nccl }, `nccl: FAILED: NCCL not found: ${nccl.reason}`, 1);

const { output, error, r } = rank('cuda:0');
const base = { world, nccl: { path: nccl.path, version: nccl.versionString }, output: output.slice(-4000) };
if (error) finish(base, `nccl: FAILED: ${error}`, 1);
const problems = check(r);
if (!/NCCL version \d+\.\d+\.\d+/.test(output)) problems.push('NCCL did not print its version (NCCL_DEBUG=VERSION): was the NCCL path taken?');
const what = `world size ${r.worldSize} (${world}, ${r.backend}), NCCL ${nccl.versionString} from ${nccl.path}; allReduce sum/avg and broadcast (float32, int32) of ${r.elements} elements on cuda:0`;
if (problems.length) finish({ ...base, result: r, problems }, `nccl: FAILED: ${what}: ${problems.join('; ')}`, 1);
finish({ ...base, result: r }, `nccl: ok: ${what} equal MPI's on the CPU (max |diff| 0; float64 reference within 1e-6)`, 0);
