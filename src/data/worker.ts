// Worker-thread entry of the DataLoader: rebuilds the dataset from its description, then
// assembles the batches it is asked for and transfers (not copies) their buffers back.
// Messages in:  { type: 'batch', id, request: BatchRequest }
// Messages out: { type: 'ready' } | { type: 'batch', id, batch } | { type: 'error', id, error }
//               | { type: 'warning', warning }
import { parentPort, workerData } from 'node:worker_threads';
import { assembleBatch, batchBuffers, datasetFromSpec, type BatchRequest } from './batch.js';
import type { DatasetSpec, DataWarning } from './common.js';

interface WorkerInit {
  spec: DatasetSpec;
  concurrency: number;
}

const port = parentPort;
if (port === null) throw new Error('alexnet data worker: must run in a worker thread');
const init = workerData as WorkerInit;
const dataset = datasetFromSpec(init.spec, (warning: DataWarning) => port.postMessage({ type: 'warning', warning }));

port.on('message', (msg: { type: 'batch'; id: number; request: BatchRequest }) => {
  if (msg.type !== 'batch') return;
  assembleBatch(dataset, msg.request, init.concurrency).then(
    (batch) => port.postMessage({ type: 'batch', id: msg.id, batch }, batchBuffers(batch)),
    (e: unknown) => {
      const err = e as { message?: string; code?: string; file?: string; stack?: string };
      port.postMessage({ type: 'error', id: msg.id, error: { message: String(err?.message ?? e), code: err?.code, file: err?.file, stack: err?.stack } });
    },
  );
});
port.postMessage({ type: 'ready' });
