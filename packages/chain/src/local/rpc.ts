import { Schema } from "effect";
import { ChainErrorSchema } from "../errors.ts";
import { BlockInfoSchema, ChainInfo, LocalView } from "./backend.ts";
import { SignedCall } from "./calls.ts";

/** Longest a block long-poll may wait; the server's idle timeout is set above it. */
export const maxWaitMs = 20_000;

/** Every request the owner serves on loopback (POST /rpc, JSON). */
export const RpcRequest = Schema.Union(
  Schema.TaggedStruct("Info", {}),
  Schema.TaggedStruct("Head", {}),
  Schema.TaggedStruct("BlocksAfter", { after: Schema.Int, waitMs: Schema.Int.pipe(Schema.between(0, maxWaitMs)) }),
  Schema.TaggedStruct("Timestamp", { block: Schema.Int }),
  Schema.TaggedStruct("Nonce", { account: Schema.String }),
  Schema.TaggedStruct("UidOf", { hotkey: Schema.String }),
  Schema.TaggedStruct("Submit", { signed: SignedCall }),
  Schema.TaggedStruct("View", {}),
);
export type RpcRequest = typeof RpcRequest.Type;

/** The result schema of each request. */
export const rpcResult = {
  Info: ChainInfo,
  Head: BlockInfoSchema,
  BlocksAfter: Schema.Array(BlockInfoSchema),
  Timestamp: Schema.Number,
  Nonce: Schema.Int,
  UidOf: Schema.UndefinedOr(Schema.Int),
  Submit: Schema.Null,
  View: LocalView,
} as const;

export const RpcFailure = Schema.Struct({ ok: Schema.Literal(false), error: ChainErrorSchema });
export const RpcEnvelope = Schema.Union(Schema.Struct({ ok: Schema.Literal(true), result: Schema.Unknown }), RpcFailure);
