/**
 * Byte formats: CRC32C and the write-ahead log's record framing (WASM with a
 * TypeScript fallback), and the wire codec for Raft messages.
 *
 * @module
 */

export { crc32c, crc32cWasm } from "./crc32c.ts";
export { crc32cReference } from "./crc32c_reference.ts";
export {
  type CodecBackend,
  type CodecOptions,
  DecodedRecords,
  type DecodeOptions,
  decodeRecords,
  decodeRecordsStrict,
  encodeRecords,
  MAX_RECORD_PAYLOAD,
  RECORD_HEADER_BYTES,
  RecordCorruptionError,
  type RecordCorruptionReason,
  RecordEncoder,
} from "./records.ts";
export { ByteReader, ByteWriter } from "./binary.ts";
export * from "./codec_errors.ts";
export * from "./messages.ts";
