// Errors of the checkpoint and file-format code. They carry code 'ERR_CHECKPOINT' (not yet in
// src/errors.ts's ErrorCode union, hence the cast) and a message that names the file.
import type { AlexnetError, ErrorCode } from '../errors.js';

export const ERR_CHECKPOINT = 'ERR_CHECKPOINT' as ErrorCode;

export function checkpointError(message: string, cause?: unknown): AlexnetError {
  const e = new Error(message, cause === undefined ? undefined : { cause }) as AlexnetError;
  e.code = ERR_CHECKPOINT;
  return e;
}
