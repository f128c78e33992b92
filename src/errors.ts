// Errors thrown by this library carry a stable `code`, whether they come from the native
// addon (C++ alexnet::Error) or from the TypeScript layer.
export type ErrorCode =
  | 'ERR_ARGUMENT'
  | 'ERR_SHAPE'
  | 'ERR_DTYPE'
  | 'ERR_DEVICE'
  | 'ERR_DISPOSED'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_CUDA'
  | 'ERR_CUDA_UNAVAILABLE'
  | 'ERR_DIST'
  | 'ERR_INTERNAL'
  | 'ERR_ADDON_NOT_FOUND'
  | 'ERR_CHECKPOINT'
  | 'ERR_DATA';

export interface AlexnetError extends Error {
  code: ErrorCode;
}

export function alexnetError(code: ErrorCode, message: string, cause?: unknown): AlexnetError {
  const e = new Error(message, cause === undefined ? undefined : { cause }) as AlexnetError;
  e.code = code;
  return e;
}

export function isAlexnetError(e: unknown): e is AlexnetError {
  return e instanceof Error && typeof (e as Partial<AlexnetError>).code === 'string' && (e as AlexnetError).code.startsWith('ERR_');
}

/**
 * `s` safe to print to a terminal: control characters (C0, DEL and C1, which a terminal reads
 * as the start of an escape sequence: colours, cursor moves, a title, a clipboard write) shown
 * as \xNN. Newlines and tabs are kept with `lines` (a message of several lines), else shown too.
 * For names that come from files (class folders, a checkpoint's run configuration, paths).
 */
export function printable(s: string, { lines = false }: { lines?: boolean } = {}): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => (lines && (c === '\n' || c === '\t') ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}
