// fmaPeak: the machine's multiply-add peak per instruction set, the ceiling of the benchmarks'
// "of FMA peak" fractions. Its figures are timings (no exact value to compare with), so the
// test checks what must hold on any machine: every figure is a positive finite rate, the rows
// are the instruction sets this CPU has, best first, and the widest one beats one float at a
// time. It also runs off the JS thread and rejects bad options with ERR_ARGUMENT.
import { describe, expect, it } from 'vitest';
import { backendInfo, setNumThreads } from '../src/info.js';
import { loadNative } from '../src/native.js';
import { expectCode } from './helpers.js';

const LANES = { 'avx512f': 16, 'avx2+fma': 8, sse: 4, scalar: 1 } as const;

describe('fmaPeak', () => {
  it('measures every instruction set of this CPU, best first, on every pool thread, off the JS thread', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const rows = await loadNative().fmaPeak({ seconds: 0.1 });
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(2); // about half a second of work: the event loop kept running
    const names = rows.map((r) => r.isa);
    const order = Object.keys(LANES);
    expect(names.at(-1)).toBe('scalar'); // always there
    expect([...names].sort((a, b) => order.indexOf(a) - order.indexOf(b))).toEqual(names); // best first
    if (process.arch === 'x64') expect(names).toContain('sse');
    // the same CPU detection as the convolution's (which picks AVX-512 wherever the CPU has it)
    expect(names.includes('avx512f')).toBe(hasAvx512());
    const threads = backendInfo().backends.cpu.threads;
    for (const r of rows) {
      expect(r.lanes, r.isa).toBe(LANES[r.isa]);
      expect(r.threads, r.isa).toBe(threads);
      expect(r.seconds, r.isa).toBeGreaterThanOrEqual(0.1);
      expect(r.seconds, r.isa).toBeLessThan(5);
      expect(Number.isFinite(r.gflops) && r.gflops > 0, `${r.isa}: ${r.gflops}`).toBe(true);
      if (r.isa === 'avx512f' || r.isa === 'avx2+fma') expect(r.fused, r.isa).toBe(true);
    }
    // 4 to 16 lanes (fused, where the CPU has it) against 1: the best must not lose to scalar
    const scalar = rows.find((r) => r.isa === 'scalar')!;
    expect(rows[0]!.gflops).toBeGreaterThanOrEqual(scalar.gflops);
  }, 60_000);

  it("'best' measures only the first instruction set, and a named one only itself", async () => {
    const all = (await loadNative().fmaPeak({ seconds: 0.01 })).map((r) => r.isa);
    const [best] = await loadNative().fmaPeak({ isa: 'best', seconds: 0.01 });
    expect(best!.isa).toBe(all[0]);
    const one = await loadNative().fmaPeak({ isa: 'scalar', seconds: 0.01 });
    expect(one.map((r) => r.isa)).toEqual(['scalar']);
  }, 60_000);

  it('uses the pool size setNumThreads chose', async () => {
    const before = backendInfo().backends.cpu.threads;
    setNumThreads(1);
    try {
      const [row] = await loadNative().fmaPeak({ isa: 'scalar', seconds: 0.01 });
      expect(row!.threads).toBe(1);
    } finally {
      setNumThreads(before);
    }
  }, 60_000);

  it('rejects bad options with ERR_ARGUMENT naming the option', () => {
    const n = loadNative();
    expectCode(() => n.fmaPeak({ seconds: 0 }), 'ERR_ARGUMENT', /fmaPeak: seconds must be in \[0\.001, 10\]/);
    expectCode(() => n.fmaPeak({ seconds: 11 }), 'ERR_ARGUMENT', /fmaPeak: seconds/);
    expectCode(() => n.fmaPeak({ seconds: Number.NaN }), 'ERR_ARGUMENT', /fmaPeak: seconds/);
    expectCode(() => n.fmaPeak({ seconds: '1' as unknown as number }), 'ERR_ARGUMENT', /fmaPeak.*seconds/);
    expectCode(() => n.fmaPeak({ isa: 'mmx' as 'sse' }), 'ERR_ARGUMENT', /fmaPeak: isa must be 'all', 'best', .*got 'mmx'/);
    expectCode(() => n.fmaPeak(42 as never), 'ERR_ARGUMENT', /fmaPeak/);
    if (!hasAvx512()) expectCode(() => n.fmaPeak({ isa: 'avx512f' }), 'ERR_ARGUMENT', /fmaPeak: isa 'avx512f' is not supported by this CPU/);
  });
});

/** Whether this CPU has AVX-512F, from the convolution's own detection (an independent probe). */
function hasAvx512(): boolean {
  return backendInfo().backends.cpu.directConvIsa === 'avx512';
}
