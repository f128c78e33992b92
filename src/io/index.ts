// Checkpoints and the safetensors format.
export {
  MAX_HEADER_BYTES,
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
  loadCheckpoint,
  saveCheckpoint,
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
