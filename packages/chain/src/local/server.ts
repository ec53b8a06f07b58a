import { Effect, Either, ParseResult, Schema } from "effect";
import type { Scope } from "effect";
import { CallRejected, ChainErrorSchema } from "../errors.ts";
import type { ChainError } from "../errors.ts";
import type { LocalBackend } from "./backend.ts";
import { maxWaitMs, RpcRequest, rpcResult } from "./rpc.ts";

const decodeRequest = Schema.decodeUnknownEither(Schema.parseJson(RpcRequest));
const encodeError = Schema.encodeSync(ChainErrorSchema);

const handle = (backend: LocalBackend, request: RpcRequest): Effect.Effect<unknown, ChainError> => {
  const encoded = <A, I>(schema: Schema.Schema<A, I>) => (a: A) => Schema.encodeSync(schema)(a);
  switch (request._tag) {
    case "Info":
      return Effect.succeed(encoded(rpcResult.Info)(backend.info));
    case "Head":
      return backend.head;
    case "BlocksAfter":
      return backend.blocksAfter(request.after, request.waitMs);
    case "Timestamp":
      return backend.timestamp(request.block);
    case "Nonce":
      return backend.nonce(request.account);
    case "UidOf":
      // JSON has no undefined: "not registered" travels as a missing result.
      return backend.uidOf(request.hotkey);
    case "Submit":
      return Effect.as(backend.submit(request.signed), null);
    case "View":
      return Effect.map(backend.view, encoded(rpcResult.View));
  }
};

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** Serves the owner's backend on loopback; every request body is decoded with `RpcRequest`. */
export const serveBackend = (backend: LocalBackend, port = 0): Effect.Effect<string, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() =>
        Bun.serve({
          hostname: "127.0.0.1",
          port,
          // Long polls hold a request open up to maxWaitMs.
          idleTimeout: Math.ceil(maxWaitMs / 1000) + 10,
          fetch: async (req) => {
            const url = new URL(req.url);
            if (req.method !== "POST" || url.pathname !== "/rpc") return json({ error: "POST /rpc" }, 404);
            const request = decodeRequest(await req.text());
            if (Either.isLeft(request)) {
              const error = new CallRejected({ reason: "Malformed", detail: ParseResult.TreeFormatter.formatErrorSync(request.left) });
              return json({ ok: false, error: encodeError(error) }, 400);
            }
            const result = await Effect.runPromise(Effect.either(handle(backend, request.right)));
            return Either.isRight(result) ? json({ ok: true, result: result.right }) : json({ ok: false, error: encodeError(result.left) });
          },
        }),
      ),
      (server) => Effect.promise(() => server.stop(true)),
    ),
    (server) => `http://127.0.0.1:${server.port}`,
  );
