// Checkpoints and the safetensors format.
export {
  CHECKSUM_KEY,
  MAX_HEADER_BYTES,
  crc32,
  openRegularFile,
  removeStaleTemporaries,
  type ReadSafetensorsOptions,
  type SafetensorsHeaderEntry,
  dtypeItemSize,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
  type SafetensorsArray,
  type SafetensorsDType,
  type SafetensorsFile,
  type SafetensorsInput,
  type SafetensorsTensor,
  type WriteSafetensorsOptions,
} from './safetensors.js';
export {
  CHECKPOINT_FORMAT,
  MAX_DATA_ORDER,
  loadCheckpoint,
  readCheckpointHeader,
  saveCheckpoint,
  type CheckpointHeader,
  type CheckpointState,
  type DataOrder,
  type DataOrderRecipe,
  type HostTensor,
  type LoadCheckpointOptions,
  type LoadedCheckpoint,
  type TensorLike,
  type TensorSource,
} from './checkpoint.js';
export { ERR_CHECKPOINT, checkpointError } from './errors.js';
export { encodeOnnx, exportOnnx, onnxIrVersion, type OnnxExportInfo, type OnnxExportOptions } from './onnx.js';
