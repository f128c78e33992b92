// initDistributed() and the Communicator: MPI's world when the process was started by Open
// MPI's mpirun, else a world of one process (native/dist/comm.h says exactly when). The
// collectives are queued like every other operator, on the tensor's device: CPU tensors go
// through MPI on the CPU queue, CUDA tensors through NCCL on the device's stream
// (native/dist/nccl_comm.h; one GPU per rank). allReduce and broadcast return at once and work
// in place (a later read of the tensor sees the result, and an error reaches that read); the
// first collective on a CUDA tensor also creates the NCCL communicator, the one step that waits
// (for every rank to join). barrier and finalize return promises that settle once they have
// run. Every rank must issue the same collectives in the same order.
import { isMainThread } from 'node:worker_threads';
import { alexnetError } from '../errors.js';
import { loadNative, type DistWorld, type NativeWork } from '../native.js';
import { handleOf, type Tensor } from '../tensor.js';

export type ReduceOp = 'sum' | 'avg';

export class Communicator {
  /** This process's rank in [0, worldSize). */
  readonly rank: number;
  readonly worldSize: number;
  /** The rank among the processes on this machine (OMPI_COMM_WORLD_LOCAL_RANK, else a shared-memory split). */
  readonly localRank: number;
  readonly localSize: number;
  /** 'mpi' or 'single' (a world of one: not launched under mpirun). */
  readonly backend: 'mpi' | 'single';
  /** Why a world of one ('' under MPI). */
  readonly reason: string;
  /** The thread level MPI provided ('' for a world of one). */
  readonly threadLevel: string;

  /** @internal use initDistributed() */
  constructor(world: DistWorld) {
    if (world.kind !== 'mpi' && world.kind !== 'single')
      throw alexnetError('ERR_DIST', `Communicator: the world is ${world.kind}; use initDistributed()`);
    this.rank = world.rank;
    this.worldSize = world.worldSize;
    this.localRank = world.localRank;
    this.localSize = world.localSize;
    this.backend = world.kind;
    this.reason = world.reason;
    this.threadLevel = world.threadLevel;
  }

  /**
   * In place on a float32 tensor: the element-wise sum over all ranks ('sum'), or that sum
   * divided by worldSize ('avg'). Queued; returns the tensor. On the CPU through MPI; on CUDA
   * through NCCL (ncclAllReduce, ncclSum / ncclAvg) on the device's stream: ERR_DIST naming
   * where it looked when libnccl.so.2 cannot be loaded (`alexnet info` says).
   */
  allReduce<T extends Tensor>(tensor: T, op: ReduceOp = 'sum'): T {
    loadNative().distAllReduce(handleOf(tensor, 'allReduce', 'tensor'), op);
    return tensor;
  }

  /**
   * allReduce that CPU work does not wait for: it runs on the communication thread once the CPU
   * work queued before it has run, while the CPU goes on with the work queued after it (PyTorch's
   * async_op=True). Until `work.wait()` is called, nothing queued may read or write `tensor`;
   * work queued after wait() sees the result (and a failure reaches its next read). On a CUDA
   * tensor it is ncclAllReduce on the device's stream, which orders the work after it already:
   * wait() has nothing to wait for.
   */
  allReduceAsync(tensor: Tensor, op: ReduceOp = 'sum'): Work {
    return new Work(loadNative().distAllReduceAsync(handleOf(tensor, 'allReduceAsync', 'tensor'), op));
  }

  /** In place: every rank's tensor gets `root`'s contents (any dtype; CUDA: ncclBroadcast). Queued; returns the tensor. */
  broadcast<T extends Tensor>(tensor: T, root = 0): T {
    loadNative().distBroadcast(handleOf(tensor, 'broadcast', 'tensor'), root);
    return tensor;
  }

  /** Settles once every rank has reached it (and this rank's earlier CPU work has run). MPI's, for CUDA work too. */
  barrier(): Promise<void> {
    return loadNative().distBarrier();
  }

  /**
   * MPI_Finalize after the work queued so far; the communicator is unusable afterwards. Done
   * for you when the main thread's event loop ends normally (see finalizeAtExit).
   */
  finalize(): Promise<void> {
    return loadNative().distFinalize();
  }
}

/** An asynchronous collective (Communicator.allReduceAsync). */
export class Work {
  readonly #handle: NativeWork;
  /** @internal */
  constructor(handle: NativeWork) {
    this.#handle = handle;
  }
  /** CPU work queued after this call waits for the collective (cudaStreamWaitEvent). Returns at once. */
  wait(): void {
    loadNative().distWait(this.#handle);
  }
}

/**
 * Sets up the process's communicator (once; later calls return the same world). Under Open
 * MPI's mpirun it initialises MPI (MPI_Init_thread, on the communication queue's thread); otherwise it is
 * a world of one, where allReduce and broadcast leave tensors unchanged. Rejects with ERR_DIST
 * when launched under mpirun but libmpi.so.40 cannot be loaded or MPI fails.
 */
export async function initDistributed(): Promise<Communicator> {
  const native = loadNative();
  await native.distInit();
  const world = native.distWorld();
  if (world.kind === 'mpi') finalizeAtExit();
  return new Communicator(world);
}

let exitHook = false;
/**
 * A rank that initialised MPI and exits without MPI_Finalize is an "abnormal termination" to
 * mpirun, which then fails the whole job. So when the main thread's event loop runs dry
 * (`beforeExit`: a normal end, not process.exit() or an uncaught exception, which must still
 * fail the job), MPI is finalized if the program did not do it itself.
 */
function finalizeAtExit(): void {
  if (exitHook || !isMainThread) return;
  exitHook = true;
  const hook = (): void => {
    process.off('beforeExit', hook);
    const native = loadNative();
    if (native.distWorld().kind !== 'mpi') return;
    native.distFinalize().catch((e: unknown) => {
      console.error(`alexnet: MPI_Finalize at exit failed: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    });
  };
  process.on('beforeExit', hook);
}
