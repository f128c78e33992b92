// The `alexnet` command-line tool.
import { Command, InvalidArgumentError } from 'commander';
import { backendInfo, packageVersion, setNumThreads } from '../info.js';
import { seedForward } from './forward.js';

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

function printInfo(json: boolean): void {
  const info = backendInfo();
  if (json) {
    console.log(JSON.stringify(info));
    return;
  }
  const { cpu, cuda } = info.backends;
  console.log(`alexnet-node ${info.version} (node ${info.node}, ${info.platform})`);
  console.log(`addon   ${info.addon.path} (built with ${info.addon.buildSystem}, N-API ${info.addon.napiVersion})`);
  console.log(`cpu     available; matrix products: ${cpu.gemm === 'blas' ? cpu.blas : 'portable kernel'}; ${cpu.threads} threads`);
  if (!cuda.compiled) {
    console.log(`cuda    not compiled: ${cuda.reason}`);
  } else {
    console.log(`cuda    compiled (${cuda.architectures ?? ''}, runtime ${cuda.runtimeVersion ?? '?'}); ` +
      `${cuda.available ? 'available' : `unavailable: ${cuda.reason}`}`);
  }
}

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
  .option('-b, --batch <n>', 'batch size', positiveInt('batch'), 4)
  .option('-c, --classes <n>', 'number of classes', positiveInt('classes'), 2)
  .option('-t, --threads <n>', 'CPU threads', positiveInt('threads'))
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

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  console.error(`alexnet: ${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}`);
  process.exitCode = 1;
});
