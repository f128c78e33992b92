// The `alexnet` command-line tool.
import { Command, InvalidArgumentError } from 'commander';
import { alexnetError, printable } from '../errors.js';
import { backendInfo, packageVersion, setNumThreads } from '../info.js';
import { seedForward } from './forward.js';
import { useDefaultOpenblasKernels, type ConvAlgorithm } from '../native.js';
import { launchedRank, launchRanks } from './launch.js';
import { evalCommand, exportCommand, filtersCommand, plotCommand, predictCommand, samplesCommand, trainCommand } from './commands.js';

// Numeric flags are bounded, so a typo or a hostile value is an ERR_ARGUMENT error naming the
// flag and its range, never a multi-gigabyte allocation or a V8 out-of-memory abort.
function num(name: string, min = 0, max = Number.MAX_VALUE) {
  return (value: string): number => {
    const n = value.trim() === '' ? NaN : Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      const range = max === Number.MAX_VALUE ? `a finite number from ${min}` : `a number from ${min} to ${max}`;
      throw alexnetError('ERR_ARGUMENT', `--${name} must be ${range}, got '${value}'`);
    }
    return n;
  };
}

function oneOf<T extends string>(name: string, values: readonly T[]) {
  return (value: string): T => {
    if (!(values as readonly string[]).includes(value)) throw new InvalidArgumentError(`${name} must be one of ${values.join(', ')}`);
    return value as T;
  };
}

function int(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = /^\s*[+]?\d+\s*$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw alexnetError('ERR_ARGUMENT', `--${name} must be an integer from ${min} to ${max}, got '${value}'`);
    }
    return n;
  };
}

/** A comma-separated list of integers in [min, max] (given back as such, checked). */
function intList(name: string, min: number, max: number) {
  const one = int(name, min, max);
  return (value: string): string => {
    const parts = value.split(',');
    if (parts.length > 64) throw alexnetError('ERR_ARGUMENT', `--${name} takes at most 64 values, got ${parts.length}`);
    return parts.map((p) => String(one(p))).join(',');
  };
}

function positiveInt(name: string, max: number = LIMITS.count) {
  return int(name, 1, max);
}

/** The ranges of the numeric flags (see the comment above `num`). */
export const LIMITS = {
  /** Batch sizes: 1024 images of 3x227x227 floats are 633 MB already. */
  batch: 1024,
  /** Synthetic dataset sizes (ImageNet's training set is 1.28 million). */
  samples: 10_000_000,
  /** Data worker threads. */
  workers: 256,
  /** Classes (a 4096 x 100,000 last layer is 1.6 GB). */
  classes: 100_000,
  /** Steps, epochs and other counts. */
  count: Number.MAX_SAFE_INTEGER,
  /** CPU threads. */
  threads: 1024,
  /** Local processes of `train --nproc`. */
  ranks: 1024,
} as const;

function printInfo(json: boolean): void {
  const info = backendInfo();
  if (json) {
    console.log(JSON.stringify(info));
    return;
  }
  const { cpu, cuda } = info.backends;
  console.log(`alexnet-node ${info.version} (node ${info.node}, ${info.platform})`);
  console.log(`addon   ${info.addon.path} (built with ${info.addon.buildSystem}, N-API ${info.addon.napiVersion})`);
  const base = cpu.convAlgorithm === 'im2col' || cpu.directConvIsa === 'none' ? 'im2col + GEMM' : `direct (${cpu.convAlgorithm === 'direct-avx2' ? 'avx2' : cpu.directConvIsa}) where it applies, else im2col + GEMM`;
  // 'winograd' forces Winograd where it applies; 'auto' takes it for large enough stride-1 layers
  const conv = cpu.convAlgorithm === 'winograd' ? `Winograd for stride-1 3x3 and 5x5, else ${base}`
    : cpu.convAlgorithm === 'auto' ? `${base}, Winograd for stride-1 3x3 and 5x5 layers with enough work` : base;
  console.log(`cpu     available; matrix products: ${cpu.gemm === 'blas' ? cpu.blas : 'portable kernel'}; convolutions: ${conv}; ${cpu.threads} threads`);
  // the instruction-set cap (setCpuIsa / ALEXNET_CPU_ISA) and what the kernels use under it
  const isaName = (i: string) => (i === 'avx512' ? 'AVX-512' : i === 'avx2' ? 'AVX2' : 'baseline x86-64 / portable');
  console.log(`cpu isa our kernels: ${isaName(cpu.isa)}${cpu.isaCap === 'auto' ? ' (no cap' : ` (capped: ${cpu.isaCap}`}; the CPU has ${isaName(cpu.isaHardware)})` +
    `${process.env.OPENBLAS_CORETYPE ? `; OpenBLAS kernels forced by OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE}` : ''}`);
  console.log(`dtypes  float32, int32, bfloat16 (bfloat16: conversions and linear; bfloat16 products on the CPU: ` +
    `${cpu.bf16Kernel === 'amx_bf16' ? 'AMX (tiles) and AVX-512 BF16' : cpu.bf16Kernel === 'avx512_bf16' ? 'AVX-512 BF16' : `portable (via float32${cpu.bf16Hardware ? '' : '; this CPU has no AVX-512 BF16'})`})`);
  if (!cuda.compiled) {
    console.log(`cuda    not compiled: ${cuda.reason}`);
  } else {
    console.log(`cuda    compiled (${cuda.architectures ?? ''}, runtime ${cuda.runtimeVersion ?? '?'}); ` +
      `${cuda.available ? 'available' : `unavailable: ${cuda.reason}`}`);
    const lt = cuda.libraries?.cublasLt;
    if (cuda.libraries?.cublas.found && lt) {
      console.log(`cublasLt ${lt.found ? `found; fused GEMM epilogues ${cuda.cublasLtEpilogues ? 'on' : 'off (setCublasLtEpilogues(true) or ALEXNET_CUBLASLT=1)'}` : lt.note}`);
    }
  }
  const { mpi } = info;
  console.log(mpi.found ? `mpi     found: ${mpi.path} (${mpi.version || 'version unknown'})` : `mpi     not found: ${mpi.reason}`);
  const { nccl } = info;
  console.log(nccl.found ? `nccl    found: ${nccl.path} (NCCL ${nccl.versionString})` : `nccl    not found: ${nccl.reason}`);
}

// A reader that goes away (`alexnet train --json | head -3`): writing to the closed stdout raised
// EPIPE as an uncaught exception with a stack trace, and a training run died without saving its
// checkpoint. Output stops there; a command that listens for Ctrl-C (train) gets one, so it
// saves a checkpoint after this step and ends; any other ends at once, as SIGPIPE would end it.
let stdoutGone = false;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  if (stdoutGone) return;
  stdoutGone = true;
  if (process.listenerCount('SIGINT') > 0) process.emit('SIGINT');
  else process.exit(141); // 128 + SIGPIPE, what a shell reports for a command SIGPIPE ended
});

const program = new Command();
program
  .name('alexnet')
  .description('AlexNet for Node.js on a native addon (cuDNN/cuBLAS on NVIDIA GPUs, OpenBLAS on the CPU)')
  .version(packageVersion());

program
  .command('info')
  .description('show the version, the backends compiled in and what was found on this machine')
  .option('--json', 'print one JSON object')
  .action((opts: { json?: boolean }) => printInfo(Boolean(opts.json)));

program
  .command('forward')
  .description('run one timed forward pass of the seed AlexNet (random weights) on the CPU')
  .option('-b, --batch <n>', 'batch size', positiveInt('batch', LIMITS.batch), 4)
  .option('-c, --classes <n>', 'number of classes', positiveInt('classes', LIMITS.classes), 2)
  .option('-t, --threads <n>', 'CPU threads', positiveInt('threads', LIMITS.threads))
  .option('--json', 'print one JSON object')
  .action(async (opts: { batch: number; classes: number; threads?: number; json?: boolean }) => {
    if (opts.threads) setNumThreads(opts.threads);
    const r = await seedForward({ batch: opts.batch, classes: opts.classes });
    if (opts.json) {
      console.log(JSON.stringify(r));
      return;
    }
    console.log(`seed AlexNet, ${(r.parameters / 1e6).toFixed(1)}M parameters, batch ${r.batch} -> output [${r.outputShape.join(', ')}]`);
    console.log(`forward pass: ${r.milliseconds.toFixed(1)} ms (${r.imagesPerSecond.toFixed(1)} images/s)`);
    r.probabilities.forEach((p, i) => console.log(`  image ${i}: p = [${p.map((v) => v.toFixed(4)).join(', ')}]`));
  });

program
  .command('train')
  .description('train AlexNet (default: the built-in synthetic dataset, the seed network, He initialisation, SGD lr 0.002, momentum 0.9, weight decay 5e-4, batch 32)')
  .option('--data <folder>', 'training images, one sub-folder per class (default: the synthetic dataset)')
  .option('--val-data <folder>', 'validation images, same class folders')
  .option('--config <name>', 'seed | paper2012 | torchvision', oneOf('config', ['seed', 'paper2012', 'torchvision'] as const), 'seed')
  .option('--classes <n>', 'number of classes (synthetic: 2 to 8)', positiveInt('classes', LIMITS.classes))
  .option('--init <name>', 'kaiming | paper | pytorch (initial weights)', oneOf('init', ['kaiming', 'paper', 'pytorch'] as const), 'kaiming')
  .option('--device <name>', 'cpu or cuda:N', 'cpu')
  .option('-b, --batch-size <n>', 'batch size', positiveInt('batch-size', LIMITS.batch), 32)
  .option('-e, --epochs <n>', 'epochs', positiveInt('epochs', 1_000_000), 4)
  .option('--lr <x>', 'learning rate (0.002 suits the He-initialised network at batch 32; 0.01 diverges)', num('lr'), 0.002)
  .option('--momentum <x>', 'momentum', num('momentum'), 0.9)
  .option('--weight-decay <x>', 'weight decay', num('weight-decay'), 5e-4)
  .option('--convention <name>', 'pytorch | krizhevsky (SGD momentum convention)', oneOf('convention', ['pytorch', 'krizhevsky'] as const), 'pytorch')
  .option('--schedule <spec>', 'none | step:N | multistep:A,B | plateau (divide by 10 when validation error stops improving)', 'none')
  .option('--checkpoint <file>', 'checkpoint file (safetensors), written every --checkpoint-every steps and at the end', 'runs/alexnet.safetensors')
  .option('--checkpoint-every <n>', 'steps between checkpoints (0: only at the end)', int('checkpoint-every', 0, LIMITS.count), 20)
  .option('--resume <file>', 'continue the run saved in this checkpoint')
  .option('--no-verify', 'skip the checkpoint checksum verification (faster loads; corruption goes unnoticed)')
  .option('--metrics <file>', 'metrics log (JSON lines)', 'runs/metrics.jsonl')
  .option('--train-size <n>', 'synthetic training images', positiveInt('train-size', LIMITS.samples), 2048)
  .option('--val-size <n>', 'synthetic validation images', positiveInt('val-size', LIMITS.samples), 256)
  .option('--seed <n>', 'seed of the data order, augmentation, initialisation and dropout', int('seed', 0, LIMITS.count), 0)
  .option('--workers <n>', 'data worker threads', int('workers', 0, LIMITS.workers))
  .option('--max-steps <n>', 'stop after this many steps', positiveInt('max-steps'))
  .option('--warmup <n>', 'linear learning-rate warm-up over the first n steps', int('warmup', 0, LIMITS.count), 0)
  .option('--precision <name>', 'fp32 | bf16 (bfloat16 activations and weight copies; float32 master weights, weight gradients, loss and checkpoints; --config seed or torchvision)', oneOf('precision', ['fp32', 'bf16'] as const), 'fp32')
  .option('--cuda-graph', 'CUDA: after warm-up, capture the training step as a CUDA graph and replay it (opt-in; steps run eagerly, with a notice, where it cannot be used: dropout active, data-parallel, a failed capture)')
  .option('--channels-last', 'channels-last ([N, H, W, C]) activations in the convolution stack, the layout of cuDNN\'s tensor-core kernels (opt-in; weights and checkpoints unchanged; not with --config paper2012, whose LRN has no such form)')
  .option('--json', 'print one JSON object per line instead of a progress bar, ending with a summary')
  .option('--threads <n>', 'CPU threads of this process (default: all cores; with --nproc: the cores shared out among the ranks)', positiveInt('threads', LIMITS.threads))
  .option('--nproc <n>', 'train data-parallel with n local processes: runs this command under mpirun -n n (needs Open MPI; --batch-size is per process)', positiveInt('nproc', LIMITS.ranks))
  .action(async (opts, cmd: Command) => {
    const { nproc, threads, ...rest } = opts as { nproc?: number; threads?: number } & Record<string, unknown>;
    if (nproc !== undefined) {
      // this process only starts mpirun and waits: the ranks parse the same options again
      process.exitCode = await launchRanks(nproc, process.argv.slice(2));
      return;
    }
    if (threads !== undefined) setNumThreads(threads);
    const explicit = new Set(Object.keys(rest).filter((k) => cmd.getOptionValueSource(k) === 'cli'));
    await trainCommand({ ...(rest as unknown as Parameters<typeof trainCommand>[0]), json: Boolean(rest.json), explicit });
  });

program
  .command('eval <checkpoint>')
  .description('top-1 / top-5 accuracy of a checkpoint on its validation data (or --data)')
  .option('--data <folder>', 'evaluate on this image folder instead')
  .option('--device <name>', 'cpu or cuda:N', 'cpu')
  .option('-b, --batch-size <n>', 'batch size', positiveInt('batch-size', LIMITS.batch), 32)
  .option('--json', 'print one JSON object')
  .option('--no-verify', 'skip the checkpoint checksum verification (faster loads; corruption goes unnoticed)')
  .action(async (checkpoint: string, opts) => evalCommand(checkpoint, { ...opts, json: Boolean(opts.json) }));

program
  .command('predict <checkpoint> <images...>')
  .description('the top-k classes of each image')
  .option('-k, --top <n>', 'how many classes to show', positiveInt('top', LIMITS.classes), 5)
  .option('--device <name>', 'cpu or cuda:N', 'cpu')
  .option('--json', 'one JSON object per image')
  .option('--no-verify', 'skip the checkpoint checksum verification (faster loads; corruption goes unnoticed)')
  .action(async (checkpoint: string, images: string[], opts) => predictCommand(checkpoint, images, { ...opts, json: Boolean(opts.json) }));

program
  .command('export <checkpoint>')
  .description('write the model of a checkpoint as an ONNX file (standard operators; input \'input\' [N, 3, S, S], output \'logits\')')
  .requiredOption('-o, --out <file>', 'output .onnx file')
  .option('--opset <n>', 'ONNX operator set, 11 to 21', int('opset', 1, 1000), 13)
  .option('--batch <n>', "'dynamic' or a fixed batch size", (v: string) => (v === 'dynamic' ? ('dynamic' as const) : positiveInt('batch', LIMITS.batch)(v)), 'dynamic' as 'dynamic' | number)
  .option('--softmax', "also output 'probabilities' (softmax of the logits)")
  .option('--json', 'print one JSON object')
  .option('--no-verify', 'skip the checkpoint checksum verification (faster loads; corruption goes unnoticed)')
  .action(async (checkpoint: string, opts: { out: string; opset: number; batch: 'dynamic' | number; softmax?: boolean; json?: boolean; verify: boolean }) =>
    exportCommand(checkpoint, { ...opts, softmax: Boolean(opts.softmax), json: Boolean(opts.json) }));

program
  .command('plot <metrics>')
  .description('loss and accuracy curves of a metrics log as a PNG')
  .requiredOption('-o, --out <file>', 'output PNG')
  .action(async (metrics: string, opts: { out: string }) => plotCommand(metrics, opts.out));

program
  .command('filters <checkpoint>')
  .description("the first layer's kernels as an image grid (like figure 3 of the 2012 paper)")
  .requiredOption('-o, --out <file>', 'output PNG')
  .option('--scale <n>', 'pixels per kernel pixel', positiveInt('scale', 256), 4)
  .option('--no-verify', 'skip the checkpoint checksum verification (faster loads; corruption goes unnoticed)')
  .action(async (checkpoint: string, opts: { out: string; scale: number; verify: boolean }) => filtersCommand(checkpoint, opts.out, opts));

program
  .command('bench')
  .description('inference and training images/s of the seed AlexNet per batch size against a matmul and the FMA peak, a per-layer table, peak memory, onnxruntime-node and PyTorch (CPU) beside it, the same network in mixed precision (bf16), and (CPU) data-parallel training: 2 ranks under mpirun beside 1 process')
  .option('--device <name>', 'cpu or cuda:N', 'cpu')
  .option('--batch <list>', 'batch sizes, comma separated (cpu: 1,16,64; cuda: 1,16,64,128)', intList('batch', 1, LIMITS.batch))
  .option('--reps <n>', 'timed repetitions (best is kept)', positiveInt('reps', 100_000), 3)
  .option('--no-peer', 'skip the peers (onnxruntime-node; PyTorch, run by ALEXNET_BENCH_PYTHON or /usr/bin/python3)')
  .option('--save', 'write bench/results/bench-<device>[-<cpu model>]-<date>.{json,md}')
  .option('--json', 'one JSON object per batch size: {device, batch, trainImagesPerSecond, inferImagesPerSecond, layers, ...}')
  .option('--conv <algo>', 'CPU convolution path: auto | direct | direct-avx2 | im2col | winograd (to compare them)', oneOf('conv', ['auto', 'direct', 'direct-avx2', 'im2col', 'winograd'] as const), 'auto')
  .option('--no-bf16', 'skip the mixed-precision (bf16) network timed beside the float32 one in the same rounds')
  .option('--no-weight-cache', 'CPU: derive packed / transformed weights on every call (setWeightCache(false)), to compare with the cache')
  .option('--no-dist', 'skip the data-parallel line (CPU: 2 ranks under mpirun x half the threads beside 1 process x all of them)')
  .option('--dist-batch <n>', 'global batch of the data-parallel line (split over the ranks)', positiveInt('dist-batch', LIMITS.batch), 32)
  .option('--isa <set>', "CPU: 'avx2' caps our kernels to AVX2 and puts OpenBLAS (and the PyTorch peer) on AVX2 kernels, re-running the command in a child process with ALEXNET_CPU_ISA=avx2 OPENBLAS_CORETYPE=Haswell; onnxruntime cannot be capped and keeps the CPU's best", oneOf('isa', ['auto', 'avx2'] as const), 'auto')
  .action(async (opts: { device: string; batch?: string; reps: number; peer: boolean; save?: boolean; json?: boolean; conv: ConvAlgorithm; weightCache: boolean; dist: boolean; distBatch: number; bf16: boolean; isa: 'auto' | 'avx2' }) => {
    const { benchCommand, benchIsaChild } = await import('./bench.js');
    if (opts.isa === 'avx2') {
      // OpenBLAS and our cap are fixed when the addon loads: the work runs in a child process
      if (!(await benchIsaChild(opts.isa))) return;
    } else useDefaultOpenblasKernels(); // before the addon loads
    await benchCommand({ ...opts, json: Boolean(opts.json), save: Boolean(opts.save) });
  });

program
  .command('samples <folder>')
  .description('write synthetic-dataset images as PNG files, one sub-folder per class (to try predict, or as an image folder)')
  .option('-n, --count <n>', 'images', positiveInt('count', 1_000_000), 8)
  .option('--classes <n>', 'number of classes', positiveInt('classes', 8), 2)
  .option('--seed <n>', 'seed', int('seed', 0, LIMITS.count), 123)
  .action(async (folder: string, opts: { count: number; classes: number; seed: number }) => samplesCommand(folder, opts));

// Under mpirun or srun (a world of more than one) an error names its rank and ends the process
// at once: the other ranks may wait in a collective for this one, and the launcher ends the whole
// job when a rank exits with an error (an orderly exit would try MPI_Finalize and wait for them).
program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  const mpiRank = launchedRank();
  // the message may hold a path or a name from a file: no escape sequence reaches the terminal
  const message = printable((e.message ?? String(err)).replace(/^alexnet: /, ''), { lines: true });
  console.error(`${mpiRank !== undefined ? `rank ${mpiRank}: ` : ''}alexnet: ${message}${e.code ? ` (${printable(String(e.code))})` : ''}`);
  process.exitCode = 1;
  if (mpiRank !== undefined) process.exit(1);
});
