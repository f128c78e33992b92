// Errors of the checkpoint and file-format code: code 'ERR_CHECKPOINT' (one of src/errors.ts's
// ErrorCodes) and a message that names the file.
import type { AlexnetError, ErrorCode } from '../errors.js';

export const ERR_CHECKPOINT: ErrorCode = 'ERR_CHECKPOINT';

export function checkpointError(message: string, cause?: unknown): AlexnetError {
  const e = new Error(message, cause === undefined ? undefined : { cause }) as AlexnetError;
  e.code = ERR_CHECKPOINT;
  return e;
}
